-- AWS access keys for EventBridge's own API (SigV4). A token is either a bearer token (only its
-- SHA-256 stored) or an access key pair: its id in clear, its secret sealed with AES-256-GCM
-- (a signature is checked with the secret itself, so a digest would not do). For an access key,
-- token_sha256 holds the SHA-256 of the access key id and is never accepted as a bearer token.
ALTER TABLE api_tokens
    ADD COLUMN access_key_id text UNIQUE CHECK (access_key_id ~ '^[A-Z0-9]{16,128}$'),
    ADD COLUMN secret_sealed bytea,
    ADD CONSTRAINT api_tokens_access_key_whole
        CHECK ((access_key_id IS NULL) = (secret_sealed IS NULL));

-- The id (a hash, not the key) of the key that seals secrets: one row. A process whose key has
-- another id refuses to start.
CREATE TABLE secret_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key_id   text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    set_at   timestamptz NOT NULL DEFAULT now()
);
