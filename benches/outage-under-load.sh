#!/usr/bin/env bash
# What an outage under load costs: `switchyard bench` posts at a fixed rate to a running router
# and, mid-run, either the router is killed with SIGKILL and started again at once (`kill`), or
# the PostgreSQL it uses (its own cluster, through DATABASE_URL) is restarted (`pg-restart`).
# Prints the bench's report (acknowledged, delivered, lost, duplicates) and what the database
# holds afterwards. The bench waits 20 s after the last acknowledged event arrives, past the 10 s
# lease, so deliveries sent twice are counted. Needs a release build and the system's PostgreSQL binaries.
#
#   cargo build --release && benches/outage-under-load.sh kill
#   RATE=2000 DURATION=30s AT=10 benches/outage-under-load.sh pg-restart
set -euo pipefail
MODE=${1:?usage: benches/outage-under-load.sh kill|pg-restart}
cd "$(dirname "$0")/.."
RATE=${RATE:-2000} DURATION=${DURATION:-30s} AT=${AT:-10} PORT=${PORT:-18090}
NAME=outage TOKEN=outage-bench-token-0123456789 PGPORT=55499
# A 10 s lease, so that the deliveries a killed router sent but never recorded are sent again
# (duplicates, as at-least-once has it) within the bench's settle time.
export SWITCHYARD_LEASE_MS=10000
. benches/own-postgres.sh
start_router; ready

SWITCHYARD_DATA_DIR=$WORK/bench "$BIN" bench --router http://127.0.0.1:$PORT --token $TOKEN \
  --duration "$DURATION" --rate "$RATE" --drain 240s --settle 20s --json --log warn \
  >"$WORK/bench.json" &
BENCH=$!
sleep "$AT"
T0=$(date +%s.%N)
case $MODE in
  kill) kill -9 "$ROUTER"; start_router ;;
  pg-restart) "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w restart >/dev/null ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
ready
echo "$MODE at ${AT}s: the router answered /readyz again after $(echo "$(date +%s.%N) - $T0" | bc) s" >&2
# Duplicates make the bench exit non-zero; after a kill they are expected (at-least-once).
wait $BENCH || true
cat "$WORK/bench.json"; echo
psql_ -c \
  "SELECT 'stored: ' || count(*) || ' events, ' || (SELECT count(*) FROM deliveries) || ' deliveries ('
     || (SELECT count(*) FROM deliveries WHERE state = 'delivered') || ' delivered), '
     || (SELECT count(*) FROM delivery_attempts) || ' attempts' FROM events"
