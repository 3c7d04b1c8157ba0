-- The rule page's dead letters of the last 24 hours per target (BENCHMARKS.md, "The rule page's
-- dead letters"), on a router's own database:
--   SWITCHYARD_DATA_DIR=/tmp/sydl SWITCHYARD_ADMIN_TOKEN=… switchyard serve --listen 127.0.0.1:18600 --workers 0 &
--   psql -h /tmp/sydl/pg -U postgres switchyard -f benches/rule-page-dead-letters.sql
-- Fills a million dead letters of the last 14 hours, half of them of rule-7's target `sink`,
-- then times five times each: the count as it was (every dead letter of the day grouped, with
-- migration 0025's index dropped inside a transaction that is rolled back) and as it is.
\set ON_ERROR_STOP 1
ALTER TABLE deliveries DISABLE TRIGGER dead_letter_added;
INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state, attempts,
                        next_attempt_at, dead_at, dead_reason, created_at, finalized_at, budget_started_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'default', 'rule-' || (g % 2 * 7), 'sink',
       '00000000-0000-7000-8000-000000000007', 'dead', 1, now(), now() - g * interval '50 ms',
       'final_status', now(), now(), now()
FROM generate_series(1, 1000000) g;
ALTER TABLE deliveries ENABLE TRIGGER dead_letter_added;
VACUUM ANALYZE deliveries;
\set before 'SELECT target_id, count(*) FROM deliveries WHERE bus = ''default'' AND rule_name = ''rule-7'' AND state = ''dead'' AND dead_at > now() - interval ''1 day'' GROUP BY target_id'
\set after 'SELECT t.id, (SELECT count(*) FROM (SELECT FROM deliveries d WHERE d.bus = ''default'' AND d.rule_name = ''rule-7'' AND d.target_id = t.id AND d.state = ''dead'' AND d.dead_at > now() - interval ''1 day'' LIMIT 1001) AS recent) FROM unnest(''{sink,other}''::text[]) AS t(id)'
\o /dev/null
\timing on
BEGIN;
DROP INDEX deliveries_dead_by_target;
:before;
:before;
:before;
:before;
:before;
ROLLBACK;
:after;
:after;
:after;
:after;
:after;
