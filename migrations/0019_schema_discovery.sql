-- Schema discovery: on a bus with `schema_discovery` on, a background pass infers a schema for
-- each event type whose recent events its latest version does not all accept (or that has no
-- version), and keeps it as the type's draft until an operator accepts it (it becomes the next
-- version, through the compatibility check) or discards it. One draft per type, replaced as the
-- shapes seen change.
ALTER TABLE buses ADD COLUMN schema_discovery boolean NOT NULL DEFAULT false;

CREATE TABLE schema_drafts (
    bus         text NOT NULL REFERENCES buses (name) ON DELETE CASCADE,
    source      text NOT NULL,
    detail_type text NOT NULL,
    -- The inferred schema (JSON text).
    schema      text NOT NULL,
    -- How many events it was inferred from, and how many of them the latest version refused.
    samples     integer NOT NULL,
    refused     integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bus, source, detail_type)
);
