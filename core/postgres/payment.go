package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// PaymentID returns the id of the payment of a hold. A hold has at most one
// payment, so the id is derived from it and doubles as the provider's
// idempotency key: a repeated pay request can never charge twice.
func PaymentID(holdID string) string { return "p_" + holdID }

// Started is the payment that BeginPayment found or recorded, with its hold
// or order.
type Started struct {
	// Payment is the hold's payment, pending unless an earlier request
	// moved it on.
	Payment *waitroom.Payment
	// Order is the order when the hold is already sold. The request is then
	// a repeat, and its first outcome is returned again.
	Order *waitroom.Order
	// Hold is the hold in checkout with its seats, set when this call
	// recorded the payment. SellCaptured takes it.
	Hold *waitroom.Hold
}

// BeginPayment returns the pending payment of a hold in checkout, which
// the hold recorded, so the provider can be charged for it. It returns the
// existing order when the hold is already sold, so a repeated pay request
// returns the first outcome. A checkout that this process remembers needs
// no round trip.
//
// The payment record is on disk before the provider is ever charged: the
// hold committed it, or beginFresh inserts and commits it. It runs no
// serializable transaction, because concurrent payments would abort each
// other on the payments index pages. A race with the sweeper cannot lose
// money: a charge that succeeds after the hold expired finds the hold no
// longer in checkout, and FinalizePayment marks it for a refund.
func (db *DB) BeginPayment(ctx context.Context, holdID, session string, now time.Time) (*Started, error) {
	if st := db.checkouts.get(holdID, session, now); st != nil {
		return st, nil
	}
	st, err := db.beginFresh(ctx, holdID, session, now)
	if err != nil || st != nil {
		return st, err
	}
	// The hold was not a live checkout of session without a payment: find
	// out what it is.
	st = &Started{}
	err = func(tx querier) error {
		// The hold's seats are not needed for the checks below.
		h, existing, err := loadHoldPayment(ctx, tx, holdID, false)
		if err == nil && h.Session != session {
			err = waitroom.Errorf(waitroom.ENOTFOUND, "no hold %q", holdID)
		}
		if err != nil {
			return err
		}
		if h.State == waitroom.HoldSold {
			st.Order, err = loadOrder(ctx, tx, h.OrderID)
			return err
		}
		if existing != nil && existing.State != waitroom.PaymentPending {
			// A repeat of a payment that has an outcome. The provider
			// returns that outcome for a new charge with the same key.
			st.Payment = existing
			return nil
		}
		// The pending payment that every hold records is not charged before
		// checkout, nor after the checkout expired. In the second case the
		// sweeper requests the payment's status from the provider.
		if h.State != waitroom.HoldCheckout {
			return waitroom.Errorf(waitroom.ECONFLICT, "hold is %s; go to checkout first", h.State)
		}
		return waitroom.ErrHoldExpired
	}(db.Pool)
	if err != nil {
		return nil, fmt.Errorf("begin payment of hold %s: %w", holdID, err)
	}
	return st, nil
}

// beginFresh returns the pending payment of a live checkout of session,
// with the hold and its seats, in one statement, or nil when there is no
// such checkout. The hold records the payment, and the statement inserts it
// for a hold made before holds did. Its two branches never both return a
// row, since the statement's own read of payments does not see the row
// that its insert adds. The seats are found by primary key from
// subqueries, which the planner evaluates once before the scan. A join on
// the hold's seat list made it scan the whole show. The statement runs in
// its own implicit transaction, committed before the rows come back.
func (db *DB) beginFresh(ctx context.Context, holdID, session string, now time.Time) (*Started, error) {
	rows, err := db.Pool.Query(ctx, `WITH made AS (
			INSERT INTO payments (id, hold_id, state, amount_cents, created_at, updated_at)
			SELECT $1, id, 'pending', total_cents, $3, $3 FROM holds
			WHERE id = $2 AND session = $4 AND state = 'CHECKOUT' AND expires_at > $3
			ON CONFLICT (id) DO NOTHING RETURNING amount_cents
		), pay AS (
			SELECT amount_cents FROM made
			UNION ALL SELECT amount_cents FROM payments WHERE id = $1 AND state = 'pending'
		)
		SELECT pay.amount_cents, h.sale_id, h.fan, h.total_cents, h.expires_at, s.id, s.section_id, s.row_label, s.number, s.price_cents
		FROM pay, holds h, seats s
		WHERE h.id = $2 AND h.session = $4 AND h.state = 'CHECKOUT' AND h.expires_at > $3 AND s.sale_id = (SELECT sale_id FROM holds WHERE id = $2)
		AND s.id = ANY((SELECT seat_ids FROM holds WHERE id = $2)::TEXT[]) AND s.hold_id = $2
		ORDER BY s.section_id, s.row_no, s.number`, PaymentID(holdID), holdID, now, session)
	if err != nil {
		return nil, fmt.Errorf("begin payment of hold %s: %w", holdID, err)
	}
	pay := &waitroom.Payment{ID: PaymentID(holdID), HoldID: holdID, State: waitroom.PaymentPending, UpdatedAt: now}
	h := &waitroom.Hold{ID: holdID, Session: session, State: waitroom.HoldCheckout}
	for rows.Next() {
		var seat waitroom.Seat
		if err := rows.Scan(&pay.AmountCents, &h.SaleID, &h.Fan, &h.TotalCents, &h.ExpiresAt,
			&seat.ID, &seat.Section, &seat.Row, &seat.Number, &seat.PriceCents); err != nil {
			rows.Close()
			return nil, fmt.Errorf("begin payment of hold %s: %w", holdID, err)
		}
		h.Seats = append(h.Seats, seat)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("begin payment of hold %s: %w", holdID, err)
	}
	if len(h.Seats) == 0 {
		return nil, nil
	}
	return &Started{Payment: pay, Hold: h}, nil
}

// Provider outcomes that FinalizePayment takes.
const (
	OutcomeCaptured = "captured"
	OutcomeDeclined = "declined"
	// OutcomeNone means the provider holds no payment for the key; the
	// checkout may then expire.
	OutcomeNone = "none"
)

// Finalized is what FinalizePayment did.
type Finalized struct {
	Payment waitroom.Payment
	Hold    *waitroom.Hold
	Order   *waitroom.Order
	// RefundDue is true when money was captured for seats that had already
	// gone back on sale; the caller must refund it.
	RefundDue bool
	// sold is true when this call sold the hold: the payment row, the hold
	// and the order are then written and known without reading them back.
	sold bool
}

// FinalizePayment applies the provider's outcome of a payment in one
// transaction: captured sells the seats (or owes a refund when the hold is no
// longer in checkout), declined releases them, none voids a payment whose
// checkout expired. Applying the same outcome twice changes nothing.
func (db *DB) FinalizePayment(ctx context.Context, paymentID, outcome, providerRef string, now time.Time) (*Finalized, error) {
	if holdID, ok := strings.CutPrefix(paymentID, "p_"); ok {
		db.checkouts.drop(holdID)
	}
	var out *Finalized
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		out = nil
		// A payment's id names its hold (PaymentID), so both are read in
		// one round trip.
		holdID, ok := strings.CutPrefix(paymentID, "p_")
		if !ok {
			return waitroom.Errorf(waitroom.ENOTFOUND, "no payment %q", paymentID)
		}
		h, pay, err := loadHoldPayment(ctx, tx, holdID, true)
		if waitroom.ErrorCode(err) == waitroom.ENOTFOUND || (err == nil && pay == nil) {
			return waitroom.Errorf(waitroom.ENOTFOUND, "no payment %q", paymentID)
		}
		if err != nil {
			return err
		}
		out = &Finalized{Hold: h}
		next, err := finalizeState(ctx, tx, pay, h, outcome, providerRef, now, out)
		if err != nil {
			return err
		}
		if next != pay.State && !out.sold {
			if _, err := tx.Exec(ctx, `UPDATE payments SET state = $2, provider_ref = $3, updated_at = $4 WHERE id = $1`,
				paymentID, next, providerRef, now); err != nil {
				return fmt.Errorf("update payment: %w", err)
			}
		}
		if next != pay.State {
			pay.State, pay.ProviderRef = next, providerRef
		}
		out.Payment = *pay
		out.RefundDue = pay.State == waitroom.PaymentRefundPending
		if out.sold {
			return nil // sell updated h as the database now has it
		}
		if out.Hold, err = loadHold(ctx, tx, h.ID); err != nil {
			return err
		}
		if out.Order == nil && out.Hold.OrderID != "" {
			out.Order, err = loadOrder(ctx, tx, out.Hold.OrderID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("finalize payment %s: %w", paymentID, err)
	}
	return out, nil
}

// finalizeState performs the seat and order changes of an outcome and
// returns the payment's next state.
func finalizeState(ctx context.Context, tx pgx.Tx, pay *waitroom.Payment, h *waitroom.Hold, outcome, ref string, now time.Time, out *Finalized) (string, error) {
	switch outcome {
	case OutcomeCaptured:
		switch pay.State {
		case waitroom.PaymentPending:
			if h.State == waitroom.HoldCheckout {
				order, err := sell(ctx, tx, h, pay, ref, now)
				out.Order = order
				out.sold = err == nil
				return waitroom.PaymentCaptured, err
			}
			return waitroom.PaymentRefundPending, nil
		case waitroom.PaymentVoid, waitroom.PaymentDeclined:
			// The provider took money after we gave up on it: the seats
			// are gone, so the money goes back.
			return waitroom.PaymentRefundPending, nil
		}
		return pay.State, nil
	case OutcomeDeclined, OutcomeNone:
		if pay.State != waitroom.PaymentPending {
			return pay.State, nil
		}
		next, holdState := waitroom.PaymentDeclined, waitroom.HoldReleased
		if outcome == OutcomeNone {
			next, holdState = waitroom.PaymentVoid, waitroom.HoldExpired
		}
		if h.State == waitroom.HoldCheckout {
			if err := freeSeats(ctx, tx, h, holdState, now); err != nil {
				return "", err
			}
		}
		return next, nil
	}
	return "", fmt.Errorf("unknown payment outcome %q", outcome)
}

// sell moves a hold in checkout to SOLD in the caller's transaction:
// creates its order, records the captured payment and its outbox event, all
// in one batch (queueSell). It returns the order and marks h as sold.
func sell(ctx context.Context, tx pgx.Tx, h *waitroom.Hold, pay *waitroom.Payment, ref string, now time.Time) (*waitroom.Order, error) {
	o, payload, err := soldOrder(h, pay, now)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	queueSell(b, h, o, payload, ref)
	br := tx.SendBatch(ctx, b)
	err = readSell(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sell hold %s: %w", h.ID, err)
	}
	h.State, h.OrderID = waitroom.HoldSold, o.ID
	return o, nil
}

// queueSell adds the statement that sells a hold in checkout whose payment
// was captured with ref: it records the capture, sells the seats and the
// hold, creates the order and writes the outbox event. It enforces its own
// preconditions, so it can go with its COMMIT in one round trip (see
// pipeTx). The order's total is NULL, and its insert fails, unless the
// payment was pending, the hold was in checkout, and every seat of the hold
// was in checkout for it.
func queueSell(b *pgx.Batch, h *waitroom.Hold, o *waitroom.Order, payload, ref string) {
	b.Queue(`WITH payment AS (
			UPDATE payments SET state = 'captured', provider_ref = $3, updated_at = $4 WHERE id = $2 AND state = 'pending' RETURNING id
		), sold AS (
			UPDATE seats SET state = 'SOLD' WHERE sale_id = $5 AND id = ANY($6) AND hold_id = $1 AND state = 'CHECKOUT' RETURNING id
		), hold AS (
			UPDATE holds SET state = 'SOLD', order_id = $7, updated_at = $4 WHERE id = $1 AND state = 'CHECKOUT'
			RETURNING total_cents, seat_count
		), ord AS (
			INSERT INTO orders (id, sale_id, session, hold_id, payment_id, state, total_cents, created_at)
			VALUES ($7, $5, $8, $1, $2, 'PAID',
				(SELECT hold.total_cents FROM hold, payment WHERE hold.seat_count = (SELECT count(*) FROM sold)), $4)
			RETURNING id
		)
		INSERT INTO outbox (id, sale_id, kind, payload, created_at) SELECT 'sold:' || $7, $5, 'sold', $9, $4 FROM ord`,
		h.ID, o.PaymentID, ref, o.CreatedAt, h.SaleID, seatIDs(h), o.ID, o.Session, payload)
}

// readSell reads the result of queueSell's statement.
func readSell(br pgx.BatchResults) error {
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("sell: %w", err)
	}
	return nil
}

// soldOrder returns the order that selling h with payment pay at now
// creates, and the outbox payload of its sold event, whose id is "sold:"
// and the order id. Ids derive from the hold, so every attempt writes the
// same rows.
func soldOrder(h *waitroom.Hold, pay *waitroom.Payment, now time.Time) (*waitroom.Order, string, error) {
	o := &waitroom.Order{ID: "o_" + strings.TrimPrefix(h.ID, "h_"), SaleID: h.SaleID, Session: h.Session, HoldID: h.ID,
		State: waitroom.OrderPaid, Seats: h.Seats, TotalCents: h.TotalCents, PaymentID: pay.ID, CreatedAt: now}
	payload, err := eventPayload(wire.InventoryEvent{ID: "sold:" + o.ID, Kind: wire.EventSold, SaleID: o.SaleID, HoldID: h.ID,
		OrderID: o.ID, PaymentID: pay.ID, Seats: seatIDs(h), AmountCents: o.TotalCents, At: now})
	if err != nil {
		return nil, "", err
	}
	return o, payload, nil
}

// SellCaptured applies a captured payment that BeginPayment started: when
// the hold is still in checkout and the payment pending, it sells the hold
// in one pipelined transaction. Otherwise, as when the sweeper expired the
// hold meanwhile, FinalizePayment decides, and may owe a refund.
func (db *DB) SellCaptured(ctx context.Context, st *Started, ref string, now time.Time) (*Finalized, error) {
	db.checkouts.drop(st.Hold.ID)
	h, pay := *st.Hold, *st.Payment
	o, payload, err := soldOrder(&h, &pay, now)
	if err != nil {
		return nil, err
	}
	err = db.groupTx(ctx, func(b *pgx.Batch) { queueSell(b, &h, o, payload, ref) }, readSell)
	switch {
	case err == nil:
		h.State, h.OrderID = waitroom.HoldSold, o.ID
		pay.State, pay.ProviderRef, pay.UpdatedAt = waitroom.PaymentCaptured, ref, now
		return &Finalized{Payment: pay, Hold: &h, Order: o, sold: true}, nil
	case constraint(err) == "holds_seats_complete" || SQLState(err) == "23502" || SQLState(err) == "23505":
		// Not in the state sold from; the general path decides.
		return db.FinalizePayment(ctx, pay.ID, OutcomeCaptured, ref, now)
	}
	return nil, fmt.Errorf("sell hold %s: %w", h.ID, err)
}

// MarkRefunded records that a payment owed back was refunded.
func (db *DB) MarkRefunded(ctx context.Context, paymentID string, now time.Time) error {
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		var holdID string
		var amount int64
		err := tx.QueryRow(ctx, `UPDATE payments SET state = 'refunded', updated_at = $2 WHERE id = $1 AND state = 'refund_pending'
			RETURNING hold_id, amount_cents`, paymentID, now).Scan(&holdID, &amount)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // already recorded
		}
		if err != nil {
			return err
		}
		var saleID string
		if err := tx.QueryRow(ctx, `SELECT sale_id FROM holds WHERE id = $1`, holdID).Scan(&saleID); err != nil {
			return err
		}
		return addEvent(ctx, tx, wire.InventoryEvent{ID: "refunded:" + paymentID, Kind: wire.EventRefunded, SaleID: saleID,
			HoldID: holdID, PaymentID: paymentID, AmountCents: amount, At: now})
	})
	if err != nil {
		return fmt.Errorf("mark payment %s refunded: %w", paymentID, err)
	}
	return nil
}

const paymentQuery = `SELECT hold_id, state, amount_cents, provider_ref, updated_at FROM payments WHERE id = $1`

func loadPayment(ctx context.Context, tx querier, id string) (*waitroom.Payment, error) {
	return scanPayment(tx.QueryRow(ctx, paymentQuery, id), id)
}

// loadHoldPayment loads a hold, with its seats when seats is true, and its
// payment, nil when it has none, in one round trip.
func loadHoldPayment(ctx context.Context, tx querier, holdID string, seats bool) (*waitroom.Hold, *waitroom.Payment, error) {
	b := &pgx.Batch{}
	queueHold(b, holdID, seats)
	b.Queue(paymentQuery, PaymentID(holdID))
	br := tx.SendBatch(ctx, b)
	h, err := readHold(br, holdID, seats)
	var pay *waitroom.Payment
	if err == nil {
		pay, err = scanPayment(br.QueryRow(), PaymentID(holdID))
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("load hold and payment: %w", cerr)
	}
	return h, pay, err
}

func scanPayment(row pgx.Row, id string) (*waitroom.Payment, error) {
	p := &waitroom.Payment{ID: id}
	err := row.Scan(&p.HoldID, &p.State, &p.AmountCents, &p.ProviderRef, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load payment: %w", err)
	}
	return p, nil
}

func loadOrder(ctx context.Context, tx querier, id string) (*waitroom.Order, error) {
	o := &waitroom.Order{ID: id}
	err := tx.QueryRow(ctx, `SELECT sale_id, session, hold_id, payment_id, state, total_cents, created_at FROM orders WHERE id = $1`, id).
		Scan(&o.SaleID, &o.Session, &o.HoldID, &o.PaymentID, &o.State, &o.TotalCents, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, waitroom.Errorf(waitroom.ENOTFOUND, "no order %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load order: %w", err)
	}
	var ids []string
	if err := tx.QueryRow(ctx, `SELECT seat_ids FROM holds WHERE id = $1`, o.HoldID).Scan(&ids); err != nil {
		return nil, fmt.Errorf("load order seats: %w", err)
	}
	if o.Seats, err = linkedSeats(ctx, tx, o.SaleID, o.HoldID, ids); err != nil {
		return nil, fmt.Errorf("load order seats: %w", err)
	}
	return o, nil
}

// FindOrderByID returns an order of session.
func (db *DB) FindOrderByID(ctx context.Context, orderID, session string) (*waitroom.Order, error) {
	var out *waitroom.Order
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		o, err := loadOrder(ctx, tx, orderID)
		if err != nil {
			return err
		}
		if o.Session != session {
			return waitroom.Errorf(waitroom.ENOTFOUND, "no order %q", orderID)
		}
		out = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find order %s: %w", orderID, err)
	}
	return out, nil
}

// CancelOrder cancels a paid order of session: its seats go back on sale,
// the fan's ticket count is given back, and its payment is owed back (the
// caller refunds it). Cancelling again returns the order unchanged, so the
// seats return to sale once.
func (db *DB) CancelOrder(ctx context.Context, orderID, session string, now time.Time) (*waitroom.Order, bool, error) {
	var out *waitroom.Order
	var changed bool
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		changed = false
		o, err := loadOrder(ctx, tx, orderID)
		if err != nil {
			return err
		}
		if o.Session != session {
			return waitroom.Errorf(waitroom.ENOTFOUND, "no order %q", orderID)
		}
		out = o
		if o.State == waitroom.OrderRefunded {
			return nil
		}
		h, err := loadHold(ctx, tx, o.HoldID)
		if err != nil {
			return err
		}
		ids := seatIDs(h)
		tag, err := tx.Exec(ctx, `UPDATE seats SET state = 'AVAILABLE', hold_id = NULL WHERE sale_id = $1 AND id = ANY($2) AND hold_id = $3 AND state = 'SOLD'`,
			o.SaleID, ids, h.ID)
		if err != nil {
			return fmt.Errorf("free sold seats: %w", err)
		}
		if int(tag.RowsAffected()) != len(ids) {
			return fmt.Errorf("cancel order %s: %d of %d seats sold", orderID, tag.RowsAffected(), len(ids))
		}
		if err := uncountTickets(ctx, tx, h); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE orders SET state = 'REFUNDED' WHERE id = $1`, orderID); err != nil {
			return fmt.Errorf("update order: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE payments SET state = 'refund_pending', updated_at = $2 WHERE id = $1 AND state = 'captured'`, o.PaymentID, now); err != nil {
			return fmt.Errorf("update payment: %w", err)
		}
		err = addEvent(ctx, tx, wire.InventoryEvent{ID: "released:" + h.ID, Kind: wire.EventReleased, SaleID: o.SaleID,
			HoldID: h.ID, OrderID: o.ID, Seats: ids, Reason: "CANCELLED", At: now})
		if err != nil {
			return err
		}
		o.State, changed = waitroom.OrderRefunded, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("cancel order %s: %w", orderID, err)
	}
	return out, changed, nil
}
