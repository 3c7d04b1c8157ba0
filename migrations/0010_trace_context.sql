-- W3C trace context: each event's own span (`traceparent`: trace id, span id, flags), the
-- producer's span it is a child of (none when the event started the trace), and the
-- producer's `tracestate`. Deliveries send a child of the event's span.
ALTER TABLE events
    ADD COLUMN traceparent text,
    ADD COLUMN trace_parent_id text,
    ADD COLUMN tracestate text;
