-- The ticket limit that applied when a fan's count last grew. The hold
-- transaction sets it with the count, so the check in migration 007 can
-- stop a hold over the limit inside the statement that counts it: the
-- transaction then fails in SQL, and its COMMIT, sent in the same round
-- trip, commits nothing. NULL on rows counted before this column existed.
ALTER TABLE fan_tickets ADD COLUMN IF NOT EXISTS max_tickets INT;
