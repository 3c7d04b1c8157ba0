-- How a target receives its deliveries: EventBridge's event as JSON (as before), or a
-- CloudEvent in structured or binary mode (src/delivery/format.rs).
ALTER TABLE targets
    ADD COLUMN format text NOT NULL DEFAULT 'eventbridge'
        CHECK (format IN ('eventbridge', 'cloudevents-structured', 'cloudevents-binary'));
