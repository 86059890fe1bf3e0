-- See migration 011.
ALTER TABLE orders DROP CONSTRAINT orders_hold_id_key;
