-- Admin UI sessions: the cookie holds a random id, only its SHA-256 is stored, with the CSRF
-- token the session's forms must carry. Any process can check any session.
CREATE TABLE ui_sessions (
    id_sha256  bytea PRIMARY KEY CHECK (length(id_sha256) = 32),
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);

-- "Events accepted in the last hour" on every UI page.
CREATE INDEX events_received ON events (received_at);
