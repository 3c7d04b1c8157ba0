-- History for the 10-million-event run of BENCHMARKS.md: events :start to :start + :n - 1, each
-- with one delivered delivery and one attempt, received 17 ms apart from two days ago (ten
-- million span 47 hours). Ids are UUIDv7 built from the receive time, like the router's.
--   psql -h DATA_DIR/pg -U postgres switchyard -v start=0 -v n=1000000 -f benches/history-fill.sql
\set ON_ERROR_STOP 1
BEGIN;
CREATE TEMP TABLE h ON COMMIT DROP AS
SELECT t,
       (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(m, 1, 3) || '8' || substr(m, 4, 15))::uuid AS ev,
       (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, '0') || '7' || substr(m, 18, 3) || '9' || substr(m, 21, 12) || 'abc')::uuid AS del
FROM (SELECT now() - interval '2 days' + (g * interval '17 ms') AS t, md5(g::text || random()::text) AS m
      FROM generate_series(:start, :start + :n - 1) AS g) s;
INSERT INTO events (id, bus, body, source, detail_type, event_time, received_at, matched_rules, delivery_ids)
SELECT ev, 'history',
       format('{"version":"0","id":"%s","detail-type":"bench","source":"bench","account":"000000000000","time":"%s","region":"local","resources":[],"detail":{"kind":7,"sent_ns":1795745985891945059,"seq":1}}', ev, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
       'bench', 'bench', t, t, '["rule-7"]', ARRAY[del]
FROM h;
INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state, attempts, next_attempt_at,
                        last_status, created_at, finalized_at, budget_started_at)
SELECT del, ev, 'history', 'rule-7', 'sink', '00000000-0000-7000-8000-000000000007', 'delivered', 1, t, 200, t, t, t
FROM h;
INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, response_headers)
SELECT del, 1, t, 1, 200, '{"content-length": "0"}'
FROM h;
COMMIT;
