-- Ordered delivery per key. A target with `ordering` sends the deliveries of one group (its
-- `group_by` path's value in the event) one at a time, in the order their events were
-- acknowledged. The order lives in the queue's rows and transitions, so every process and
-- every crash keeps it:
--   * a group's deliveries after its head wait as 'queued' (never claimable);
--   * the head `holds_group` (at most one per group: the unique index below);
--   * when the head ends (delivered; dead, unless the target blocks on dead letters;
--     discarded), the group's next queued delivery becomes pending and holds the group.
-- `delivery_groups` counts what each group owes; ingest and every transition that ends a head
-- lock its row, which orders them (a queued delivery is always visible to the transition
-- that promotes it).

ALTER TABLE targets
    ADD COLUMN ordering_group_by text,
    ADD COLUMN ordering_on_dead text CHECK (ordering_on_dead IN ('continue', 'block')),
    ADD CONSTRAINT targets_ordering_whole CHECK ((ordering_group_by IS NULL) = (ordering_on_dead IS NULL));

ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_state_check
        CHECK (state IN ('queued', 'pending', 'held', 'in_flight', 'delivered', 'dead', 'discarded')),
    -- The group key the delivery was made with and its place in the group (NULL: unordered).
    -- Byte order like delivery_groups.group_key: an index serves a comparison only in its own
    -- collation, and the two columns are compared.
    ADD COLUMN group_key text COLLATE "C",
    ADD COLUMN group_seq bigint,
    ADD COLUMN holds_group boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT deliveries_group_whole CHECK ((group_key IS NULL) = (group_seq IS NULL)),
    ADD CONSTRAINT deliveries_holder_grouped CHECK (NOT holds_group OR group_key IS NOT NULL),
    ADD CONSTRAINT deliveries_queued_waits CHECK (state <> 'queued' OR (group_key IS NOT NULL AND NOT holds_group));

-- One head per group, whatever any process does.
CREATE UNIQUE INDEX deliveries_group_head ON deliveries (target_ref, group_key) WHERE holds_group;
-- A group's next delivery.
CREATE INDEX deliveries_group_queue ON deliveries (target_ref, group_key, group_seq) WHERE state = 'queued';

CREATE TABLE delivery_groups (
    target_ref uuid NOT NULL,
    -- Byte order, so that operators page through groups along the primary key.
    group_key  text COLLATE "C" NOT NULL,
    bus        text NOT NULL,
    -- Deliveries of the group not yet ended, the head included (a dead head that blocks too);
    -- a group that owes nothing has no row.
    owed       bigint NOT NULL CHECK (owed > 0),
    -- The group_seq of the group's newest delivery.
    last_seq   bigint NOT NULL,
    PRIMARY KEY (target_ref, group_key)
);
