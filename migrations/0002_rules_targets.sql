-- Rules and their webhook targets. A rule is replaced as a whole (PUT), so a
-- target belongs to exactly one rule and goes away with it.
CREATE TABLE rules (
    id            uuid PRIMARY KEY,
    bus           text NOT NULL REFERENCES buses (name) ON DELETE CASCADE,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    -- The pattern exactly as the operator wrote it (JSON text): numbers keep
    -- their written form, which jsonb would normalise.
    event_pattern text NOT NULL,
    state         text NOT NULL CHECK (state IN ('enabled', 'disabled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bus, name)
);

CREATE TABLE targets (
    id                       uuid PRIMARY KEY,
    rule_id                  uuid NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    target_id                text NOT NULL,
    position                 smallint NOT NULL,
    url                      text NOT NULL,
    method                   text NOT NULL,
    headers                  jsonb NOT NULL DEFAULT '{}',
    -- One of: whole event, constant JSON, JSONPath, or paths map + template.
    input_kind               text NOT NULL CHECK (input_kind IN ('event', 'constant', 'path', 'transformer')),
    input                    text,
    input_path               text,
    input_paths_map          jsonb,
    input_template           text,
    maximum_retry_attempts   integer NOT NULL CHECK (maximum_retry_attempts BETWEEN 0 AND 185),
    maximum_event_age_seconds integer NOT NULL CHECK (maximum_event_age_seconds BETWEEN 60 AND 86400),
    timeout_ms               integer NOT NULL CHECK (timeout_ms > 0),
    UNIQUE (rule_id, target_id),
    CHECK ((input_kind = 'constant') = (input IS NOT NULL)),
    CHECK ((input_kind = 'path') = (input_path IS NOT NULL)),
    CHECK ((input_kind = 'transformer') = (input_template IS NOT NULL AND input_paths_map IS NOT NULL))
);

CREATE INDEX targets_rule ON targets (rule_id, position);
