#!/bin/sh
# What one `switchyard bench` run costs Postgres, per acknowledged event: CPU (every Postgres
# process, the exited backends included), WAL bytes and statement time; beside it the bench's own
# figures of the routers' CPU and its own (clients and sink) per event. Each run gets a fresh
# throwaway Postgres 15 cluster with pg_stat_statements under /tmp/sy-scale (as root: initdb and
# postgres run as the `postgres` user). Arguments go to `switchyard bench`, e.g.
#
#   cargo build --release
#   benches/postgres-cost.sh --duration 10s --rules 100 --routers 2 --sink-phase 10s
#
# Prints one JSON line; with WALDUMP=1 or WAITS=1, more to stderr (see below). Postgres's
# figures count from the load's start to the end of the drain (not the bench's setup).
D=/tmp/sy-scale
BIN=${SWITCHYARD_BIN:-$(dirname "$0")/../target/release/switchyard}
BINDIR=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
P="psql -qtA -h $D -p 5499 -U postgres bench"

pkill -f "postgres -D $D/pg"; sleep 1; rm -rf $D; mkdir -p $D && chown postgres $D
runuser -u postgres -- "$BINDIR/initdb" -D $D/pg -A trust -U postgres -E UTF8 --locale=C >/dev/null
runuser -u postgres -- "$BINDIR/pg_ctl" -D $D/pg -l $D/pg.log -w start \
  -o "-k $D -p 5499 -c listen_addresses='' -c max_connections=300 -c shared_preload_libraries=pg_stat_statements $PGOPTS" >/dev/null
psql -q -h $D -p 5499 -U postgres -c 'CREATE DATABASE bench'
$P -c 'CREATE EXTENSION pg_stat_statements'
export DATABASE_URL="postgres://postgres@localhost:5499/bench?host=$D"

# Every live Postgres process's CPU ticks, plus those of the postmaster's exited children.
pgcpu() {
  pm=$(head -1 $D/pg/postmaster.pid)
  { awk '{print $16+$17}' /proc/$pm/stat
    for p in $(pgrep -u postgres postgres); do awk '{print $14+$15}' /proc/$p/stat 2>/dev/null; done
  } | awk '{s+=$1} END {print s}'
}

$P -c 'SELECT pg_stat_statements_reset()' >/dev/null
# Every figure counts from the load's start (the bench creates $mark then, its setup done: the
# sink phase and the rules' creation are left out) to the end of the drain.
mark=$D/load-started
# WAITS=1: what the busy backends were doing, sampled every 10 ms through the load (to stderr):
# on CPU, or waiting (for a lock, the WAL's flush, a client), per statement.
[ -n "$WAITS" ] && $P -c 'CREATE UNLOGGED TABLE waits (what text); CREATE TABLE waits_stop ()'
(
  while [ ! -e $mark ]; do sleep 0.02; done
  echo "$($P -c 'SELECT pg_current_wal_lsn()') $(pgcpu)" > $D/at-start
  $P -c 'CREATE TABLE stmt0 AS SELECT queryid, userid, dbid, toplevel, total_exec_time,
           total_plan_time, wal_bytes, calls FROM pg_stat_statements'
  [ -n "$WAITS" ] && $P -c "DO \$\$ BEGIN LOOP
      EXIT WHEN EXISTS (SELECT FROM waits_stop);
      PERFORM pg_stat_clear_snapshot();
      INSERT INTO waits SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') || '  '
          || left(regexp_replace(query, '\s+', ' ', 'g'), 40)
        FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid();
      COMMIT;
      PERFORM pg_sleep(0.01);
    END LOOP; END \$\$"
) &
watcher=$!
out=$("$BIN" bench --json --load-started-file $mark "$@")
[ -e $mark ] || { kill $watcher; echo "$out"; echo "the bench ended before its load" >&2; exit 1; }
[ -n "$WAITS" ] && $P -c 'INSERT INTO waits_stop DEFAULT VALUES'
wait $watcher
[ -n "$WAITS" ] && $P -F ' | ' -c "SELECT round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
    what FROM waits GROUP BY what ORDER BY count(*) DESC LIMIT 12" >&2
read lsn0 cpu0 < $D/at-start
lsn1=$($P -c 'SELECT pg_current_wal_lsn()'); cpu1=$(pgcpu)
wal=$($P -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
# Each statement's figures since the load started (the WAITS sampler's own left out).
$P -c "CREATE VIEW since_load AS SELECT s.query, s.total_exec_time - coalesce(o.total_exec_time, 0)
    AS exec_ms, s.total_plan_time - coalesce(o.total_plan_time, 0) AS plan_ms,
    s.wal_bytes - coalesce(o.wal_bytes, 0) AS wal_bytes, s.calls - coalesce(o.calls, 0) AS calls
  FROM pg_stat_statements s LEFT JOIN stmt0 o USING (queryid, userid, dbid, toplevel)
  WHERE s.query NOT LIKE 'DO %'"
stmt=$($P -c "SELECT round(sum(exec_ms)::numeric) FROM since_load")
acked=$(echo "$out" | python3 -c 'import json,sys; print(max(json.load(sys.stdin)["acked_events"], 1))')
# The statements that cost most, per acknowledged event (to stderr: the JSON line stays alone).
# Planning time shows with PGOPTS="-c pg_stat_statements.track_planning=on".
$P -F ' | ' -c "SELECT round((exec_ms * 1000 / $acked)::numeric, 1) AS us,
    round((plan_ms * 1000 / $acked)::numeric, 1) AS plan_us,
    round(wal_bytes / $acked) AS wal, round(calls::numeric / $acked, 3) AS calls,
    left(regexp_replace(query, '\s+', ' ', 'g'), 90)
  FROM since_load ORDER BY exec_ms DESC LIMIT 8" >&2
# WALDUMP=1: what the WAL was made of, per kind of record, per acknowledged event (to stderr).
[ -n "$WALDUMP" ] && "$BINDIR/pg_waldump" -p $D/pg/pg_wal -s "$lsn0" -e "$lsn1" --stats=record 2>&1 \
  | python3 -c "
import re, sys
rows = sorted(((int(m[5]), m[1], int(m[2])) for m in (re.match(
    r'(\S+)\s+(\d+)\s+\(.*?\)\s+(\d+)\s+\(.*?\)\s+(\d+)\s+\(.*?\)\s+(\d+)', l) for l in sys.stdin) if m), reverse=True)
for size, kind, n in rows[:12]: print(f'{kind:28} {n / $acked:7.3f} records {size / $acked:7.0f} bytes')" >&2
runuser -u postgres -- "$BINDIR/pg_ctl" -D $D/pg -m fast stop >/dev/null
echo "$out" | python3 -c "
import json, sys
r = json.load(sys.stdin); n = max(r['acked_events'], 1); tck = $(getconf CLK_TCK)
ratio = lambda k: r[k] if r[k] is None else round(r[k], 2)
print(json.dumps({'routers': r['routers'], 'rules': r['rules'],
  'acked_per_s': round(r['acked_events_per_sec']), 'delivered_per_s': round(r['deliveries_per_sec']),
  'sink_only_per_s': r['sink_only_requests_per_sec'] and round(r['sink_only_requests_per_sec']),
  'acked_to_sink': ratio('acked_to_sink'), 'delivered_to_sink': ratio('delivered_to_sink'),
  'lost': r['lost'], 'duplicates': r['duplicates'], 'acked_per_router': r['acked_per_router'],
  'e2e_p99_ms': r['e2e_p99_ms'], 'router_cpu_us_per_event': r.get('router_cpu_us_per_event') and round(r['router_cpu_us_per_event'], 1),
  'bench_cpu_us_per_event': r.get('bench_cpu_us_per_event') and round(r['bench_cpu_us_per_event'], 1),
  'router_peak_rss_mib': r['router_peak_rss_mib'] and round(r['router_peak_rss_mib']),
  'pg_cpu_us_per_event': round(($cpu1 - $cpu0) / tck * 1e6 / n, 1),
  'wal_bytes_per_event': round($wal / n), 'statement_us_per_event': round($stmt * 1000 / n, 1)}))"
