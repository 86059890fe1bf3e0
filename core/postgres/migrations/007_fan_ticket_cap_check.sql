-- A fan account never counts more places than its limit (see 006).
ALTER TABLE fan_tickets ADD CONSTRAINT fan_tickets_within_limit CHECK (max_tickets IS NULL OR tickets <= max_tickets);
