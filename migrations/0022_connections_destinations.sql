-- Connections: how Switchyard authenticates to a target (EventBridge's connections). The
-- non-secret parameters are kept as JSON; the secret ones (a password, an API key's value, an
-- OAuth client secret and the parameters marked secret) are sealed with AES-256-GCM.
CREATE TABLE connections (
    name               text PRIMARY KEY CHECK (name ~ '^[\.\-_A-Za-z0-9]{1,64}$'),
    description        text NOT NULL DEFAULT '',
    authorization_type text NOT NULL
        CHECK (authorization_type IN ('basic', 'api_key', 'oauth_client_credentials')),
    parameters         jsonb NOT NULL,
    secret_sealed      bytea NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- API destinations: an HTTP endpoint (with `*` path parameters), its method, the connection
-- that authenticates to it and a rate limit that holds across every router process.
CREATE TABLE api_destinations (
    name                             text PRIMARY KEY CHECK (name ~ '^[\.\-_A-Za-z0-9]{1,64}$'),
    description                      text NOT NULL DEFAULT '',
    connection                       text NOT NULL REFERENCES connections (name),
    endpoint                         text NOT NULL,
    http_method                      text NOT NULL,
    invocation_rate_limit_per_second integer CHECK (invocation_rate_limit_per_second > 0),
    created_at                       timestamptz NOT NULL DEFAULT now(),
    updated_at                       timestamptz NOT NULL DEFAULT now()
);

-- A target may authenticate with a connection and be rate limited; or take its endpoint,
-- method, connection and rate limit from an API destination (copied into the target when it is
-- saved, and again whenever the destination changes, in the same transaction), with the path
-- parameters that fill the endpoint's `*` and query parameters. role_arn is what EventBridge's
-- PutTargets gave (kept; there are no IAM roles here).
ALTER TABLE targets
    ADD COLUMN connection text REFERENCES connections (name),
    ADD COLUMN rate_limit_per_second integer CHECK (rate_limit_per_second > 0),
    ADD COLUMN api_destination text REFERENCES api_destinations (name),
    ADD COLUMN path_parameters text[],
    ADD COLUMN query_parameters jsonb,
    ADD COLUMN role_arn text,
    ADD CONSTRAINT targets_destination_parameters
        CHECK (api_destination IS NOT NULL OR (path_parameters IS NULL AND query_parameters IS NULL));
CREATE INDEX targets_connection ON targets (connection) WHERE connection IS NOT NULL;
CREATE INDEX targets_api_destination ON targets (api_destination) WHERE api_destination IS NOT NULL;

-- The rate limits' windows: per key (a destination, or a target), how many sends the current
-- second has had, across every process. One short statement per rate-limited send.
CREATE TABLE rate_windows (
    key    text PRIMARY KEY,
    second timestamptz NOT NULL,
    used   integer NOT NULL
);
