-- The durable log of accepted events and the delivery queue. An event and its
-- deliveries are written in one transaction: acknowledged means durable.
CREATE TABLE events (
    id            uuid PRIMARY KEY,
    bus           text NOT NULL,
    -- The envelope exactly as matched and delivered (JSON text, numbers as sent).
    body          text NOT NULL,
    source        text NOT NULL,
    detail_type   text NOT NULL,
    event_time    timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    -- Every rule that matched, including rules without targets.
    matched_rules jsonb NOT NULL DEFAULT '[]'
);

CREATE INDEX events_bus_received ON events (bus, received_at);

CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    bus              text NOT NULL,
    rule_name        text NOT NULL,
    target_id        text NOT NULL,
    -- targets.id at match time; no foreign key: a delivery outlives a rule
    -- change, and the worker decides what a vanished target means.
    target_ref       uuid NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'held', 'in_flight', 'delivered', 'dead', 'discarded')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      uuid,
    lease_expires_at timestamptz,
    last_status      integer,
    last_error       text,
    dead_reason      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finalized_at     timestamptz,
    -- In flight if and only if a lease exists.
    CHECK ((state = 'in_flight') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    -- A final state if and only if finalized_at is set.
    CHECK ((state IN ('delivered', 'dead', 'discarded')) = (finalized_at IS NOT NULL)),
    CHECK ((state = 'dead') = (dead_reason IS NOT NULL))
);

CREATE INDEX deliveries_event ON deliveries (event_id);
-- The claim query's index: only rows waiting to be sent.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';

-- One row per HTTP try, with a bounded slice of the response.
CREATE TABLE delivery_attempts (
    id            uuid PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL CHECK (attempt > 0),
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL CHECK (duration_ms >= 0),
    status        integer,
    response_headers jsonb,
    response_body text,
    error         text,
    UNIQUE (delivery_id, attempt)
);
