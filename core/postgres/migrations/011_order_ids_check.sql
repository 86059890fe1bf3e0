-- An order's id and payment id derive from its hold's id (o_ and p_ in
-- place of h_), so the primary key alone keeps one order per hold and one
-- per payment, and migrations 012 and 013 can drop the unique indexes on
-- hold_id and payment_id: two indexes less to write per sale.
ALTER TABLE orders ADD CONSTRAINT orders_ids_from_hold CHECK (id = 'o_' || substr(hold_id, 3) AND payment_id = 'p_' || hold_id);
