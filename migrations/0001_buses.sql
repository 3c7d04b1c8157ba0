-- Buses: namespaces for events and rules. `default` always exists.
-- `rules_version` is bumped in the same transaction as every rule change on the
-- bus; each process compares it with the version of its compiled snapshot.
CREATE TABLE buses (
    name          text PRIMARY KEY,
    description   text NOT NULL DEFAULT '',
    rules_version bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO buses (name, description) VALUES ('default', 'The default event bus');
