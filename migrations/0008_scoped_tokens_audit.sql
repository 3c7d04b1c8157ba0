-- Scoped, revocable API tokens; UI sessions tied to the token that opened them; the audit log.

-- A token may do what its scope allows (`admin` everything, `publish` post events, `read` GET),
-- optionally only on the named buses (NULL: every bus). Revoked tokens stay listed.
ALTER TABLE api_tokens
    ADD COLUMN scope text NOT NULL DEFAULT 'admin' CHECK (scope IN ('admin', 'publish', 'read')),
    ADD COLUMN buses text[] CHECK (buses IS NULL OR cardinality(buses) > 0),
    ADD COLUMN revoked_at timestamptz;

-- A session lives only as long as the token that opened it is accepted (revoked, or the
-- configured admin token rotated: the session ends). Sessions from before this migration name no
-- token: they end, and their users sign in again.
DELETE FROM ui_sessions;
ALTER TABLE ui_sessions ADD COLUMN token_sha256 bytea NOT NULL CHECK (length(token_sha256) = 32);
CREATE INDEX ui_sessions_token ON ui_sessions (token_sha256);

-- Every change an operator makes: who (the token's name and id; no id for the configured admin
-- token or the command line), what, on which resource, when.
CREATE TABLE audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    token_id  uuid,
    action    text NOT NULL,
    resource  text NOT NULL,
    detail    jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
