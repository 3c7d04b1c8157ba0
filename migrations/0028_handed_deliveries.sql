-- A delivery that ingest hands to its own process's workers is written once, at its outcome,
-- instead of as a row at ingest and that row's new version at the outcome (SCALING.md, "Fewer
-- rows per delivery"). Until its outcome the event lists it (`handed`: what makes its row) under
-- its process's hand-over lease. Each process renews its lease and keeps its checkpoint: no
-- event received before it has a handed delivery still without its row. When a lease expires,
-- another process (or the next one to start) deletes it and makes a pending row for each
-- delivery its events handed over that has none; the ingest statements of the lease lock its
-- row (KEY SHARE), so the deletion waits for those under way and the ones after it find no
-- lease and store their deliveries as rows.
CREATE TABLE handover_leases (
    id          uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    checkpoint  timestamptz NOT NULL,
    -- Its handed deliveries still without their row, as of the last renewal (the overview's
    -- count of deliveries in flight).
    outstanding integer NOT NULL DEFAULT 0 CHECK (outstanding >= 0)
);

ALTER TABLE events
    ADD COLUMN handed_to uuid,
    -- JSON, read only by a rescue and the trace: [[delivery id, rule, target id, target ref], …].
    ADD COLUMN handed text,
    -- NOT VALID: every existing row has neither column, and validating would read the whole
    -- table under this migration's lock, holding ingest back for as long on a large history.
    ADD CONSTRAINT events_handed_whole CHECK ((handed_to IS NULL) = (handed IS NULL)) NOT VALID;
