-- The schema registry: per bus, event types keyed by (source, detail-type), each with immutable
-- numbered versions of a JSON Schema (draft 2020-12) for `detail`. A change to a bus's schemas or
-- to its validation settings bumps `buses.rules_version` like a rule change, so every process
-- recompiles its validators with its rules.

-- What ingest does with schemas: `off`, `warn` (accepted and flagged), `enforce` (the entry is
-- refused); and with an event type that has no schema: `accept` or `refuse`.
ALTER TABLE buses
    ADD COLUMN schema_validation text NOT NULL DEFAULT 'off'
        CHECK (schema_validation IN ('off', 'warn', 'enforce')),
    ADD COLUMN unregistered_types text NOT NULL DEFAULT 'accept'
        CHECK (unregistered_types IN ('accept', 'refuse')),
    -- The compatibility mode of the bus's event types that do not set their own.
    ADD COLUMN schema_compatibility text NOT NULL DEFAULT 'BACKWARD'
        CHECK (schema_compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                        'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'));

CREATE TABLE event_types (
    bus           text NOT NULL REFERENCES buses (name) ON DELETE CASCADE,
    source        text NOT NULL,
    detail_type   text NOT NULL,
    description   text NOT NULL DEFAULT '',
    -- NULL: the bus's mode.
    compatibility text CHECK (compatibility IN ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                                'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus, source, detail_type)
);

-- Versions are never changed: a new shape is a new version.
CREATE TABLE schema_versions (
    bus         text NOT NULL,
    source      text NOT NULL,
    detail_type text NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    -- The schema as registered (JSON text).
    schema      text NOT NULL,
    -- Registered although the compatibility check refused it (`force`), with its reasons.
    forced      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus, source, detail_type, version),
    FOREIGN KEY (bus, source, detail_type) REFERENCES event_types ON DELETE CASCADE
);

-- In `warn` mode, what an accepted event broke (JSON: the schema version and the violations).
ALTER TABLE events ADD COLUMN schema_violations text;
