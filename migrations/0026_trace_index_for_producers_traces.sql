-- A trace begun here takes its first event's id as its trace id (domain::trace), so that event is
-- found by its primary key, and the trace index keeps only the events whose trace id is not their
-- own: the traces producers began, and every event stored before this migration. Its entry was
-- the dearest of an event's five (a random place in a hash index that keeps splitting buckets as
-- it grows: 6% of Postgres's CPU at ingest, BENCHMARKS.md "Fifth session").
-- The search repeats this predicate exactly (store::event_search), which is what lets Postgres
-- use a partial index. Rebuilding it reads the events once under this migration's lock.
DROP INDEX events_trace;
CREATE INDEX events_trace ON events USING hash ((substr(traceparent, 4, 32)))
    WHERE substr(traceparent, 4, 32) <> replace(id::text, '-', '');
-- Postgres keeps statistics of an index's expression only for a whole-table index. Without them
-- a search by trace id expected 0.5% of all events to match and walked the newest events instead
-- of looking the trace up (150 ms against 0.2 ms on 185,000 events).
CREATE STATISTICS events_trace_id ON (substr(traceparent, 4, 32)) FROM events;
