-- Each hold records the fan account that its places count against, so
-- release, expiry, cancellation and refunds give the places back to the
-- right count. A fan account spans all sessions of one fan. Old holds get
-- '' here and their account in migration 005.
--
-- This file holds one schema change and nothing else: CockroachDB does not
-- let later statements of the transaction that adds a column write to it,
-- and advises one schema change per transaction.
ALTER TABLE holds ADD COLUMN IF NOT EXISTS fan TEXT NOT NULL DEFAULT '';
