-- What the delivery engine needs beyond the queue rows of 0003.

-- Standard Webhooks signing secrets (whsec_…), readable by admins. During a rotation the previous
-- secret keeps signing too, until it expires.
ALTER TABLE targets
    ADD COLUMN secret text,
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    -- A target that answered 410 Gone stops receiving until an operator enables it again.
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_reason text,
    -- At most this many deliveries in flight to this target per process.
    ADD COLUMN max_concurrency integer NOT NULL DEFAULT 100 CHECK (max_concurrency BETWEEN 1 AND 1000);

-- Targets made before this migration get a secret of 32 random bytes (two v4 UUIDs' worth).
UPDATE targets
SET secret = 'whsec_' || encode(decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'), 'base64')
WHERE secret IS NULL;
ALTER TABLE targets ALTER COLUMN secret SET NOT NULL;
ALTER TABLE targets ADD CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL));
ALTER TABLE targets ADD CHECK ((disabled_at IS NULL) = (disabled_reason IS NULL));

ALTER TABLE deliveries
    -- The payload as rendered for the last attempt (kept for dead letters).
    ADD COLUMN payload text,
    ADD COLUMN discard_reason text,
    ADD COLUMN redrive_count integer NOT NULL DEFAULT 0,
    ADD COLUMN dead_at timestamptz,
    -- The retry budget (attempts and maximum age) counts from here: creation, or the last redrive.
    ADD COLUMN budget_started_at timestamptz NOT NULL DEFAULT now();

UPDATE deliveries SET budget_started_at = created_at;
-- A discarded dead letter keeps why and when it died: "dead ⇒ reason" replaces 0003's
-- "dead ⇔ reason".
DO $$
DECLARE
    name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'deliveries'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%dead_reason IS NOT NULL%';
    EXECUTE format('ALTER TABLE deliveries DROP CONSTRAINT %I', name);
END
$$;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_dead_has_reason CHECK (state <> 'dead' OR (dead_reason IS NOT NULL AND dead_at IS NOT NULL)),
    ADD CONSTRAINT deliveries_reason_only_when_ended CHECK (dead_reason IS NULL OR state IN ('dead', 'discarded'));

-- The dead-letter list: newest first.
CREATE INDEX deliveries_dead ON deliveries (dead_at DESC, id DESC) WHERE state = 'dead';
-- Expired leases are found by this one.
CREATE INDEX deliveries_leases ON deliveries (lease_expires_at) WHERE state = 'in_flight';
-- Held deliveries are released per target.
CREATE INDEX deliveries_held ON deliveries (target_ref) WHERE state = 'held';
