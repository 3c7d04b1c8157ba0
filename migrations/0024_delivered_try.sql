-- The try that delivered is kept in its delivery's row, written by the same update that marks the
-- delivery delivered, instead of as a row of its own in delivery_attempts: most deliveries are
-- delivered on their first try, and that second row (a heap tuple, an index entry, ~270 bytes of
-- WAL, a statement) was a quarter of what recording an outcome cost (BENCHMARKS.md, "The database
-- cost per delivery"). Failed tries keep their rows; a delivered delivery is final, so its try
-- never moves. Its status is the delivery's last_status; a try that delivered has no error.
-- The columns are new, so every existing row satisfies the checks: NOT VALID spares a scan of the
-- whole table under this migration's lock (new and updated rows are checked all the same).
ALTER TABLE deliveries
    ADD COLUMN delivered_attempt integer,
    ADD COLUMN delivered_started_at timestamptz,
    ADD COLUMN delivered_duration_ms integer,
    ADD COLUMN delivered_response_headers jsonb,
    ADD COLUMN delivered_response_body text,
    ADD CONSTRAINT deliveries_delivered_try_whole CHECK (
        (delivered_attempt IS NULL) = (delivered_started_at IS NULL)
        AND (delivered_attempt IS NULL) = (delivered_duration_ms IS NULL)
        AND delivered_attempt > 0 AND delivered_duration_ms >= 0) NOT VALID,
    ADD CONSTRAINT deliveries_delivered_try_only_when_delivered CHECK (
        delivered_attempt IS NULL OR state = 'delivered') NOT VALID;
