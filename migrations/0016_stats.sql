-- Per-minute counts for the UI's overview charts, kept by the writes rather than counted from
-- history: each process adds what it did in a minute (per bus, rule and target) every few
-- seconds, in one statement, so no row is written per event and a chart reads at most a row per
-- minute and target of its window. Rows are kept two days. `rule`/`target` are '' on the rows
-- that count a bus's events in.
CREATE TABLE stats_minutes (
    minute     timestamptz NOT NULL,
    bus        text NOT NULL,
    rule       text NOT NULL,
    target     text NOT NULL,
    events     int8 NOT NULL DEFAULT 0,
    delivered  int8 NOT NULL DEFAULT 0,
    retried    int8 NOT NULL DEFAULT 0,
    dead       int8 NOT NULL DEFAULT 0,
    -- Deliveries by acknowledgement-to-delivery latency, per bucket of the metrics' bounds
    -- (src/metrics.rs LATENCY_BUCKETS, then everything slower).
    latency    int8[] NOT NULL,
    PRIMARY KEY (minute, bus, rule, target)
);
