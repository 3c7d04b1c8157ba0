-- Per-minute counts of schema violations per event type, kept like stats_minutes (each process
-- adds what it saw every few seconds; rows are kept two days): the schema catalog's "violations
-- in the last hour" reads a row per minute and type, and counts refused entries too, which are
-- never stored.
CREATE TABLE schema_minutes (
    minute      timestamptz NOT NULL,
    bus         text NOT NULL,
    source      text NOT NULL,
    detail_type text NOT NULL,
    violations  int8 NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, bus, source, detail_type)
);
