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
BIN=$PWD/target/release/switchyard
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -1)
RATE=${RATE:-2000} DURATION=${DURATION:-30s} AT=${AT:-10} PORT=${PORT:-18090}
TOKEN=outage-bench-token-0123456789
WORK=$(mktemp -d /tmp/switchyard-outage.XXXXXX)
chmod 755 "$WORK"
# PostgreSQL refuses to run as root: as root, the cluster runs as `postgres`.
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); chown postgres "$WORK"; fi
# A 10 s lease, so that the deliveries a killed router sent but never recorded are sent again
# (duplicates, as at-least-once has it) within the bench's settle time.
export SWITCHYARD_TARGET_ALLOW_CIDRS=127.0.0.0/8 SWITCHYARD_ADMIN_TOKEN=$TOKEN SWITCHYARD_LOG=warn \
  SWITCHYARD_LEASE_MS=10000
PGPORT=55499
"${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
"${AS_PG[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p $PGPORT -U postgres switchyard
export DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/switchyard

ROUTER=
start_router() { "$BIN" serve --listen 127.0.0.1:$PORT >>"$WORK/router.log" 2>&1 & ROUTER=$!; }
ready() { for _ in $(seq 1 600); do curl -sf 127.0.0.1:$PORT/readyz >/dev/null && return; sleep 0.1; done; }
cleanup() {
  [ -n "$ROUTER" ] && kill "$ROUTER" 2>/dev/null && sleep 2
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
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
psql -h 127.0.0.1 -p $PGPORT -U postgres -d switchyard -Atc \
  "SELECT 'stored: ' || count(*) || ' events, ' || (SELECT count(*) FROM deliveries) || ' deliveries ('
     || (SELECT count(*) FROM deliveries WHERE state = 'delivered') || ' delivered), '
     || (SELECT count(*) FROM delivery_attempts) || ' attempts' FROM events"
