-- See migration 011.
ALTER TABLE orders DROP CONSTRAINT orders_payment_id_key;
