-- Archives: per bus, the events an optional pattern selects, kept for `retention_days` (0: for
-- ever) even past the general retention. Membership is a row per archived event, written by
-- the statement that stores the event; general retention does not take an event while an
-- archive holds it. No foreign keys, for the reasons of 0007: deleting an archive deletes its
-- rows in the same transaction.
CREATE TABLE archives (
    id             uuid PRIMARY KEY,
    bus            text NOT NULL REFERENCES buses (name) ON DELETE CASCADE,
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    -- As the operator wrote it (JSON text); NULL keeps every event of the bus.
    event_pattern  text,
    retention_days integer NOT NULL CHECK (retention_days BETWEEN 0 AND 36500),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bus, name)
);

CREATE TABLE archive_events (
    archive_id  uuid NOT NULL,
    bus         text NOT NULL,
    -- The event's received_at: replays read an archive in this order, by time window.
    received_at timestamptz NOT NULL,
    event_id    uuid NOT NULL,
    PRIMARY KEY (archive_id, received_at, event_id)
);
-- Retention asks whether any archive holds an event.
CREATE INDEX archive_events_event ON archive_events (event_id);
