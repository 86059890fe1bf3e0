-- The ticket count is kept per fan account, not per session, so a fan who
-- buys from several devices at once shares one limit. The primary key
-- (sale_id, fan) follows the renamed column. Old rows are converted in
-- migration 005, in a transaction of its own (see 003 for why).
ALTER TABLE fan_tickets RENAME COLUMN session TO fan;
