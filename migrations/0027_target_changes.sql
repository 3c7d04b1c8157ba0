-- The delivery engine keeps the targets it has read (with their connections) and reads one again
-- only after something a delivery uses may have changed: every statement that writes targets or
-- connections counts one more change here (a statement-level trigger, so a rule's five targets
-- count once), and the statements that give deliveries to the engine (the ingest statement, the
-- claim) return the count as their snapshot saw it. Such writes are an operator's, or a target's
-- 410 Gone: the one row is never hot. Reading the targets of each batch of deliveries had been a
-- statement per batch (BENCHMARKS.md, "Fifth session").
CREATE TABLE target_changes (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  int8 NOT NULL
);
INSERT INTO target_changes (version) VALUES (0);

CREATE FUNCTION count_target_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE target_changes SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER targets_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON targets
    FOR EACH STATEMENT EXECUTE FUNCTION count_target_change();
CREATE TRIGGER connections_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON connections
    FOR EACH STATEMENT EXECUTE FUNCTION count_target_change();
