-- Event search (GET /v1/events, the UI's Events page), newest first by (received_at, id). Each
-- index is paid on every ingest; BENCHMARKS.md ("Event search") has what they cost.

-- A bus's events in time order: every search that names a bus, with or without a time range.
CREATE INDEX events_bus_received ON events (bus, received_at);

-- A bus's events of one detail-type in time order ("the last OrderPlaced events").
CREATE INDEX events_bus_type_received ON events (bus, detail_type, received_at);

-- An event by the trace it belongs to: the trace id inside the stored traceparent
-- (`00-<trace id>-<span id>-<flags>`).
CREATE INDEX events_trace ON events USING hash ((substr(traceparent, 4, 32)));
