-- A hold's seat count equals the length of its seat list. The statements
-- that take, check out and sell a hold's seats set seat_count from the seats
-- they moved, so a hold that did not get every seat it lists fails this
-- check and its transaction commits nothing.
ALTER TABLE holds ADD CONSTRAINT holds_seats_complete CHECK (seat_count > 0 AND seat_count = array_length(seat_ids, 1));
