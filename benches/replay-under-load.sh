#!/usr/bin/env bash
# What a replay costs live traffic: an archive of N events (default 1,000,000, written straight
# into the router's database, received over the last hour), then `switchyard bench` posts live
# events at RATE twice: once alone, once while a replay of the whole archive runs at
# REPLAY_RATE events/s onto a rule whose target is the bench's own sink. Prints both reports
# (live figures; the replayed copies arriving are counted apart, as `replayed`) and how long the
# replay took. Needs a release build and the system's PostgreSQL binaries.
#
#   cargo build --release && benches/replay-under-load.sh
#   N=100000 REPLAY_RATE=5000 RATE=1000 [DURING=60s] benches/replay-under-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000} RATE=${RATE:-1000} REPLAY_RATE=${REPLAY_RATE:-3000} PORT=${PORT:-18091}
BASELINE=${BASELINE:-60s}
NAME=replay TOKEN=replay-bench-token-0123456789 PGPORT=55498
. benches/own-postgres.sh
start_router; ready
api() { curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }

api -X PUT 127.0.0.1:$PORT/v1/buses/default/archives/all -d '{}' >/dev/null
ARCHIVE=$(psql_ -c "SELECT id FROM archives WHERE name = 'all'")
FROM=$(date -u -d '-1 hour -10 seconds' +%Y-%m-%dT%H:%M:%SZ)
T0=$(date +%s.%N)
psql_ <<SQL
BEGIN;
CREATE TEMP TABLE h ON COMMIT DROP AS
SELECT g, now() - interval '1 hour' + (g * (interval '1 hour' / $N)) AS t, gen_random_uuid() AS ev
FROM generate_series(0, $N - 1) AS g;
INSERT INTO events (id, bus, body, source, detail_type, event_time, received_at, matched_rules)
SELECT ev, 'default',
       format('{"version":"0","id":"%s","detail-type":"archived","source":"replay-bench","account":"000000000000","time":"%s","region":"local","resources":[],"detail":{"n":%s}}', ev, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), g),
       'replay-bench', 'archived', t, t, '[]'
FROM h;
INSERT INTO archive_events (archive_id, bus, received_at, event_id) SELECT '$ARCHIVE', 'default', t, ev FROM h;
COMMIT;
VACUUM ANALYZE events;
VACUUM ANALYZE archive_events;
SQL
echo "filled an archive of $N events in $(echo "$(date +%s.%N) - $T0" | bc) s" >&2

bench() { # duration, output
  SWITCHYARD_DATA_DIR=$WORK/bench "$BIN" bench --router http://127.0.0.1:$PORT --token $TOKEN \
    --rules 1 --duration "$1" --rate "$RATE" --drain 120s --json --log warn >"$2"
}
bench "$BASELINE" "$WORK/alone.json"
echo "live alone:" >&2; cat "$WORK/alone.json"; echo

# Long enough for the replay at its pace (which it may go under, giving way to live traffic),
# with a margin: the replayed copies are delivered to the bench's sink, which lives as long as
# the bench does.
DURATION=${DURING:-$(( N * 13 / REPLAY_RATE / 10 + 30 ))s}
# The bench makes a fresh bus whose one rule targets its sink: the replayed copies go there too.
sink() { psql_ -c "SELECT t.url FROM targets t JOIN rules r ON r.id = t.rule_id
                          WHERE r.bus LIKE 'bench-%' ORDER BY r.created_at DESC LIMIT 1"; }
BEFORE=$(sink)
SINK=$BEFORE
bench "$DURATION" "$WORK/during.json" &
BENCH=$!
while [ "$SINK" = "$BEFORE" ]; do sleep 0.1; SINK=$(sink); done
api -X PUT 127.0.0.1:$PORT/v1/buses/default/rules/replayed \
  -d "{\"event_pattern\": {\"source\": [\"replay-bench\"]}, \"targets\": [{\"id\": \"sink\", \"url\": \"$SINK\"}]}" >/dev/null
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 5
T0=$(date +%s.%N)
api -X POST 127.0.0.1:$PORT/v1/replays -d "{\"name\": \"bench\", \"bus\": \"default\", \"archive\": \"all\", \"from\": \"$FROM\", \"to\": \"$TO\", \"rules\": [\"replayed\"], \"events_per_second\": $REPLAY_RATE}" >/dev/null
state() { api 127.0.0.1:$PORT/v1/replays/bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
while [[ "$(state)" =~ ^(starting|running)$ ]]; do sleep 1; done
echo "the replay of $N events at $REPLAY_RATE/s took $(echo "$(date +%s.%N) - $T0" | bc) s" >&2
api 127.0.0.1:$PORT/v1/replays/bench; echo
wait $BENCH || true
echo "live during the replay:" >&2; cat "$WORK/during.json"; echo
