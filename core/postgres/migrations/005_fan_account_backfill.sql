-- Before migration 004 every count belonged to a session. A session without
-- a fan identity has the account 'session:' || session (the rule of
-- token.Claims.Account), so old counts and old holds move to that account.
-- Migrations run before the core serves requests, so every fan_tickets row
-- here is an old per-session count.
UPDATE fan_tickets SET fan = 'session:' || fan;

UPDATE holds SET fan = 'session:' || session WHERE fan = '';
