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

// BeginPayment records a pending payment for a hold in checkout. It returns
// the payment, and the existing order when the hold is already sold, so a
// repeated pay request returns the first outcome.
//
// It runs no serializable transaction. The hold is read from a snapshot and
// the payment row is inserted in READ COMMITTED, idempotently by its id.
// Concurrent payments would otherwise abort each other on the payments
// index page that they all read and write. A race with the sweeper cannot
// lose money: a charge that succeeds after the hold expired finds the hold
// no longer in checkout, and FinalizePayment marks it for a refund.
func (db *DB) BeginPayment(ctx context.Context, holdID, session string, now time.Time) (*waitroom.Payment, *waitroom.Order, error) {
	var pay *waitroom.Payment
	var order *waitroom.Order
	fresh := false
	// Single READ COMMITTED statements on the pool, as ReadTx would give,
	// without its BEGIN and COMMIT round trips.
	err := func(tx querier) error {
		// The hold's seats are not needed to start a payment.
		h, existing, err := loadHoldPayment(ctx, tx, holdID, false)
		if err == nil && h.Session != session {
			err = waitroom.Errorf(waitroom.ENOTFOUND, "no hold %q", holdID)
		}
		if err != nil {
			return err
		}
		if h.State == waitroom.HoldSold {
			order, err = loadOrder(ctx, tx, h.OrderID)
			return err
		}
		if pay = existing; pay != nil {
			return nil
		}
		switch {
		case h.State != waitroom.HoldCheckout:
			return waitroom.Errorf(waitroom.ECONFLICT, "hold is %s; go to checkout first", h.State)
		case !now.Before(h.ExpiresAt):
			return waitroom.ErrHoldExpired
		}
		pay = &waitroom.Payment{ID: PaymentID(holdID), HoldID: holdID, State: waitroom.PaymentPending,
			AmountCents: h.TotalCents, UpdatedAt: now}
		fresh = true
		return nil
	}(db.Pool)
	if err != nil {
		return nil, nil, fmt.Errorf("begin payment of hold %s: %w", holdID, err)
	}
	if !fresh {
		return pay, order, nil // an existing payment or order
	}
	err = db.execReadCommitted(ctx, `INSERT INTO payments (id, hold_id, state, amount_cents, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (id) DO NOTHING`, pay.ID, holdID, pay.State, pay.AmountCents, now)
	if err != nil {
		return nil, nil, fmt.Errorf("begin payment of hold %s: insert payment: %w", holdID, err)
	}
	return pay, nil, nil
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

// sell moves a hold in checkout to SOLD, creates its order, records the
// captured payment and its outbox event, all in one batch: one round trip.
// It returns the order and the hold as sold.
func sell(ctx context.Context, tx pgx.Tx, h *waitroom.Hold, pay *waitroom.Payment, ref string, now time.Time) (*waitroom.Order, error) {
	o := &waitroom.Order{ID: "o_" + h.ID[2:], SaleID: h.SaleID, Session: h.Session, HoldID: h.ID, State: waitroom.OrderPaid,
		Seats: h.Seats, TotalCents: h.TotalCents, PaymentID: pay.ID, CreatedAt: now}
	b := &pgx.Batch{}
	b.Queue(`UPDATE seats SET state = 'SOLD' WHERE sale_id = $1 AND id = ANY($2) AND hold_id = $3 AND state = 'CHECKOUT'`,
		h.SaleID, seatIDs(h), h.ID)
	b.Queue(`INSERT INTO orders (id, sale_id, session, hold_id, payment_id, state, total_cents, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, o.ID, o.SaleID, o.Session, o.HoldID, o.PaymentID, o.State, o.TotalCents, now)
	b.Queue(`UPDATE holds SET state = 'SOLD', order_id = $2, updated_at = $3 WHERE id = $1`, h.ID, o.ID, now)
	b.Queue(`UPDATE payments SET state = $2, provider_ref = $3, updated_at = $4 WHERE id = $1`,
		pay.ID, waitroom.PaymentCaptured, ref, now)
	args, err := eventArgs(wire.InventoryEvent{ID: "sold:" + o.ID, Kind: wire.EventSold, SaleID: o.SaleID, HoldID: h.ID,
		OrderID: o.ID, PaymentID: pay.ID, Seats: seatIDs(h), AmountCents: o.TotalCents, At: now})
	if err != nil {
		return nil, err
	}
	b.Queue(insertEvent, args...)
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err == nil && (int(tag.RowsAffected()) != len(h.Seats) || len(h.Seats) == 0) {
		err = fmt.Errorf("sell hold %s: %d of %d seats in checkout", h.ID, tag.RowsAffected(), len(h.Seats))
	}
	for _, what := range []string{"insert order", "update hold", "update payment", "insert sold event"} {
		if err != nil {
			break
		}
		if _, err = br.Exec(); err != nil {
			err = fmt.Errorf("%s: %w", what, err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sell hold %s: %w", h.ID, cerr)
	}
	if err != nil {
		return nil, err
	}
	h.State, h.OrderID = waitroom.HoldSold, o.ID
	return o, nil
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
