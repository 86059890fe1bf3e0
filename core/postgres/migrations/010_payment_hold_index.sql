-- One payment per hold follows from the primary key and the check of
-- migration 009.
ALTER TABLE payments DROP CONSTRAINT payments_hold_id_key;
