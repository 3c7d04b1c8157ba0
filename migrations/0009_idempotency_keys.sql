-- Idempotent ingest: an entry's `idempotency_key`, per bus, names the event it created. Within
-- the bus's de-duplication window a key already here answers that event and creates nothing;
-- past the window the key is taken over by the next event that sends it. 0 turns it off.
ALTER TABLE buses ADD COLUMN dedup_window_seconds integer NOT NULL DEFAULT 86400
    CHECK (dedup_window_seconds >= 0);

CREATE TABLE idempotency_keys (
    bus        text NOT NULL,
    key        text NOT NULL,
    event_id   uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus, key)
);
-- Retention removes keys past their bus's window, oldest first.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
