-- The number of dead letters, kept with the writes instead of counted on every page load and
-- scrape (a million dead letters took ~190 ms to count). Triggers add and subtract as deliveries
-- become dead or stop being dead; their WHEN clauses leave every other write (claims, delivered
-- outcomes) untouched. A transaction counts in the slot of its backend (pg_backend_pid() % 16):
-- concurrent transactions rarely wait on one row, and each locks one slot only, so they cannot
-- deadlock on the counts. The count is the sum of the slots.
CREATE TABLE dead_letter_counts (
    slot int PRIMARY KEY,
    n    int8 NOT NULL
);
INSERT INTO dead_letter_counts (slot, n) SELECT s, 0 FROM generate_series(0, 15) AS s;
UPDATE dead_letter_counts SET n = (SELECT count(*) FROM deliveries WHERE state = 'dead') WHERE slot = 0;

CREATE FUNCTION count_dead_letter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE dead_letter_counts
       SET n = n + CASE WHEN TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.state = 'dead') THEN -1 ELSE 1 END
     WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;

CREATE TRIGGER dead_letter_added AFTER INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.state = 'dead') EXECUTE FUNCTION count_dead_letter();
CREATE TRIGGER dead_letter_removed AFTER DELETE ON deliveries
    FOR EACH ROW WHEN (OLD.state = 'dead') EXECUTE FUNCTION count_dead_letter();
CREATE TRIGGER dead_letter_changed AFTER UPDATE OF state ON deliveries
    FOR EACH ROW WHEN ((OLD.state = 'dead') IS DISTINCT FROM (NEW.state = 'dead'))
    EXECUTE FUNCTION count_dead_letter();
