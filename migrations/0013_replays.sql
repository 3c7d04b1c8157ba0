-- Replays: an archive's events of a time window, matched again against a bus's current rules
-- (all, or a subset) and delivered, in their original order, paced. The cursor (the last
-- archived event replayed) moves in the transaction that stores that event's copy and its
-- deliveries, so a replay resumed by any process after a crash replays nothing twice. A
-- process works on a replay while it holds its lease.
CREATE TABLE replays (
    id                 uuid PRIMARY KEY,
    name               text NOT NULL UNIQUE,
    -- The archive read (NULL once it is deleted: the replay fails).
    archive_id         uuid,
    bus                text NOT NULL,
    archive            text NOT NULL,
    destination_bus    text NOT NULL,
    -- The destination's rules to match; NULL: all of them.
    rules              text[],
    window_from        timestamptz NOT NULL,
    window_to          timestamptz NOT NULL CHECK (window_from < window_to),
    events_per_second  integer NOT NULL CHECK (events_per_second > 0),
    state              text NOT NULL
                       CHECK (state IN ('starting', 'running', 'completed', 'cancelled', 'failed')),
    -- Archived events in the window, counted when the replay starts.
    total              bigint,
    done               bigint NOT NULL DEFAULT 0,
    cursor_received_at timestamptz,
    cursor_event_id    uuid,
    reason             text,
    lease_owner        uuid,
    lease_expires_at   timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    CHECK ((cursor_received_at IS NULL) = (cursor_event_id IS NULL)),
    CHECK ((state IN ('completed', 'cancelled', 'failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX replays_active ON replays (created_at) WHERE state IN ('starting', 'running');
CREATE INDEX replays_newest ON replays (created_at DESC, id DESC);
