-- The dead-letter counts per reason (BENCHMARKS.md, "the dead-letter counts per reason kept with
-- the writes"), on a router's own database:
--   SWITCHYARD_DATA_DIR=/tmp/sydl SWITCHYARD_ADMIN_TOKEN=… switchyard serve --listen 127.0.0.1:18600 --workers 0 &
--   psql -h /tmp/sydl/pg -U postgres switchyard -f benches/dead-letter-counts.sql
-- It times 20,000 dead rows inserted in one statement (the trigger's cost), fills a million dead
-- letters of three reasons with the insert trigger off and recounts as migration 0023 does, then
-- times the rows grouped against the kept counts, alternated five times.
\set ON_ERROR_STOP 1
\timing on
INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state, attempts,
                        next_attempt_at, dead_at, dead_reason, created_at, finalized_at, budget_started_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'default', 'rule-7', 'sink',
       '00000000-0000-7000-8000-000000000007', 'dead', 1, now(), now() - g * interval '1 ms',
       (ARRAY['final_status','retries_exhausted','max_age_exceeded'])[1 + g % 3], now(), now(), now()
FROM generate_series(1, 20000) g;
\timing off
ALTER TABLE deliveries DISABLE TRIGGER dead_letter_added;
INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state, attempts,
                        next_attempt_at, dead_at, dead_reason, created_at, finalized_at, budget_started_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'default', 'rule-7', 'sink',
       '00000000-0000-7000-8000-000000000007', 'dead', 1, now(), now() - g * interval '1 ms',
       (ARRAY['final_status','retries_exhausted','max_age_exceeded'])[1 + g % 3], now(), now(), now()
FROM generate_series(1, 980000) g;
ALTER TABLE deliveries ENABLE TRIGGER dead_letter_added;
UPDATE dead_letter_counts SET n = 0, by_reason = array_fill(0::int8, ARRAY[cardinality(dead_reasons()) + 1]);
UPDATE dead_letter_counts c SET n = (SELECT count(*) FROM deliveries WHERE state = 'dead'), by_reason = (
    SELECT array_agg((SELECT count(*) FROM deliveries d
                      WHERE d.state = 'dead'
                        AND COALESCE(array_position(dead_reasons(), d.dead_reason),
                                     cardinality(dead_reasons()) + 1) = i) ORDER BY i)
    FROM generate_series(1, cardinality(dead_reasons()) + 1) AS i
) WHERE c.slot = 0;
VACUUM ANALYZE deliveries;
VACUUM FULL dead_letter_counts;
\timing on
\o /dev/null
SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead' GROUP BY dead_reason ORDER BY dead_reason;
SELECT r.reason, sum(c.by_reason[r.i])::int8 FROM dead_letter_counts c, unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i) GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason;
SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead' GROUP BY dead_reason ORDER BY dead_reason;
SELECT r.reason, sum(c.by_reason[r.i])::int8 FROM dead_letter_counts c, unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i) GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason;
SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead' GROUP BY dead_reason ORDER BY dead_reason;
SELECT r.reason, sum(c.by_reason[r.i])::int8 FROM dead_letter_counts c, unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i) GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason;
SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead' GROUP BY dead_reason ORDER BY dead_reason;
SELECT r.reason, sum(c.by_reason[r.i])::int8 FROM dead_letter_counts c, unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i) GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason;
SELECT dead_reason, count(*) FROM deliveries WHERE state = 'dead' GROUP BY dead_reason ORDER BY dead_reason;
SELECT r.reason, sum(c.by_reason[r.i])::int8 FROM dead_letter_counts c, unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i) GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason;
