-- A payment's id is its hold's id with the prefix p_ (PaymentID), which
-- makes the payment id the provider's idempotency key. This check states
-- it, so the primary key alone keeps one payment per hold and migration
-- 010 can drop the unique index on hold_id: one index less to write per
-- payment.
ALTER TABLE payments ADD CONSTRAINT payments_id_from_hold CHECK (id = 'p_' || hold_id);
