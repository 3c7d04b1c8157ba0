-- The rule page shows each of its targets' dead letters of the last 24 hours. Through the
-- dead-letter list's index (by time, every rule's) that counted every dead letter of the day
-- (~220 ms at a million); through this one it reads the target's own only, and stops at 1,001
-- (the page says "1000+"), so a page reads at most that many entries whatever the history. Only
-- dead rows have entries: a delivery gets one when it dies, and no write of the delivery path
-- (created, claimed, delivered, retried) touches it.
CREATE INDEX deliveries_dead_by_target ON deliveries (bus, rule_name, target_id, dead_at)
    WHERE state = 'dead';
