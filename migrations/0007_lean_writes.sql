-- Ingest and delivery write events, deliveries and attempts tens of thousands of times a second,
-- and every index entry and foreign-key check is paid on each of those writes (a delivery's row
-- is written three times: created, claimed, finished; none of these updates can be HOT). This
-- migration keeps what a query needs and drops the rest (BENCHMARKS.md, "Leaner writes").

-- No query reads events by (bus, received_at); the overview counts by received_at alone.
DROP INDEX events_bus_received;

-- The trace found an event's deliveries through an index on deliveries.event_id, which cost an
-- entry for every version of every delivery row. An event's deliveries are all created with it,
-- by the same statement, so the event row lists them instead.
ALTER TABLE events ADD COLUMN delivery_ids uuid[] NOT NULL DEFAULT '{}';
UPDATE events e SET delivery_ids = d.ids
FROM (SELECT event_id, array_agg(id ORDER BY id) AS ids FROM deliveries GROUP BY event_id) AS d
WHERE d.event_id = e.id;
DROP INDEX deliveries_event;

-- Each referencing row cost a lookup and a row lock (a WAL record) on the referenced one. The one
-- statement that writes an event writes its deliveries; attempts are written only for deliveries
-- whose lease the writer holds. Removing history is retention's job, table by table.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_fkey;

-- An attempt is identified by its delivery and its number: one index instead of two.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey;
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_delivery_id_attempt_key;
ALTER TABLE delivery_attempts DROP COLUMN id;
ALTER TABLE delivery_attempts ADD PRIMARY KEY (delivery_id, attempt);
