-- History for the "operator views" figures of BENCHMARKS.md: a million events received over the
-- last hour (3.6 ms apart, as ingest stores them), the per-minute counts a process with 100
-- rules writes to stats_minutes over two days (a bus row and 100 target rows a minute), and a
-- million dead letters. Run on a router's database, then time the header's statement:
--   psql -h DATA_DIR/pg -U postgres switchyard -f benches/overview-fill.sql
--   psql -h DATA_DIR/pg -U postgres switchyard -c "EXPLAIN ANALYZE <the statement of store::overview>"
\set ON_ERROR_STOP 1
INSERT INTO buses (name) VALUES ('history') ON CONFLICT DO NOTHING;
INSERT INTO events (id, bus, body, source, detail_type, event_time, received_at, matched_rules, delivery_ids)
SELECT gen_random_uuid(), 'history', '{"version":"0","detail-type":"bench","source":"bench","detail":{"kind":7}}',
       'bench', 'bench', t, t, '["rule-7"]', '{}'
FROM (SELECT now() - (g * interval '3.6 ms') AS t FROM generate_series(1, 1000000) g) s;
INSERT INTO stats_minutes (minute, bus, rule, target, events, delivered, retried, dead, latency)
SELECT date_trunc('minute', now()) - m * interval '1 minute', 'history', r, t,
       CASE WHEN r = '' THEN 16667 ELSE 0 END, 166, 0, 0, '{}'
FROM generate_series(0, 2879) m,
     LATERAL (SELECT '' AS r, '' AS t UNION ALL SELECT 'rule-' || i, 'sink' FROM generate_series(0, 99) i) x;
INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state, attempts,
                        next_attempt_at, dead_at, dead_reason, created_at, finalized_at, budget_started_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'history', 'rule-7', 'sink',
       '00000000-0000-7000-8000-000000000007', 'dead', 1, now(), now() - g * interval '1 ms',
       'final_status', now(), now(), now()
FROM generate_series(1, 1000000) g;
VACUUM ANALYZE events;
VACUUM ANALYZE stats_minutes;
VACUUM ANALYZE deliveries;
