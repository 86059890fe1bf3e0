package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// sweepBatch bounds the holds one sweep transaction releases, so a sweep
// never holds locks on thousands of rows at once.
const sweepBatch = 500

// ExpireHeld releases carts whose time ran out, at most sweepBatch per call,
// and returns the sale ids of the holds it expired (one entry per hold).
func (db *DB) ExpireHeld(ctx context.Context, now time.Time) ([]string, error) {
	var sales []string
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		sales = sales[:0]
		rows, err := tx.Query(ctx, `UPDATE holds SET state = 'EXPIRED', updated_at = $1
			WHERE id IN (SELECT id FROM holds WHERE state = 'HELD' AND expires_at <= $1 ORDER BY expires_at LIMIT $2)
			RETURNING id, sale_id`, now, sweepBatch)
		if err != nil {
			return fmt.Errorf("expire holds: %w", err)
		}
		type expired struct{ id, sale string }
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (expired, error) {
			var e expired
			err := r.Scan(&e.id, &e.sale)
			return e, err
		})
		if err != nil {
			return fmt.Errorf("expire holds: %w", err)
		}
		for _, e := range list {
			if _, err := tx.Exec(ctx, `UPDATE seats SET state = 'AVAILABLE', hold_id = NULL WHERE sale_id = $1 AND hold_id = $2 AND state = 'HELD'`, e.sale, e.id); err != nil {
				return fmt.Errorf("free seats of hold %s: %w", e.id, err)
			}
			sales = append(sales, e.sale)
		}
		return nil
	})
	return sales, err
}

// StaleCheckout is a hold whose checkout time ran out, with its payment id
// ("" when the fan never paid).
type StaleCheckout struct {
	HoldID    string
	SaleID    string
	PaymentID string
}

// ExpiredCheckouts lists holds in checkout past their expiry.
func (db *DB) ExpiredCheckouts(ctx context.Context, now time.Time) ([]StaleCheckout, error) {
	var out []StaleCheckout
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT h.id, h.sale_id, COALESCE(p.id, '') FROM holds h LEFT JOIN payments p ON p.hold_id = h.id
			WHERE h.state = 'CHECKOUT' AND h.expires_at <= $1 ORDER BY h.expires_at LIMIT $2`, now, sweepBatch)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StaleCheckout, error) {
			var s StaleCheckout
			err := r.Scan(&s.HoldID, &s.SaleID, &s.PaymentID)
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list expired checkouts: %w", err)
	}
	return out, nil
}

// ExpireUnpaidCheckout releases a hold in checkout that has no payment and
// whose time ran out. It reports whether it released the hold.
func (db *DB) ExpireUnpaidCheckout(ctx context.Context, holdID string, now time.Time) (bool, error) {
	var released bool
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		released = false
		h, err := loadHold(ctx, tx, holdID)
		if err != nil {
			return err
		}
		pay, err := loadPayment(ctx, tx, PaymentID(holdID))
		if err != nil {
			return err
		}
		if h.State != "CHECKOUT" || now.Before(h.ExpiresAt) || pay != nil {
			return nil
		}
		released = true
		return freeSeats(ctx, tx, h.SaleID, holdID, "EXPIRED", now)
	})
	if err != nil {
		return false, fmt.Errorf("expire checkout %s: %w", holdID, err)
	}
	return released, nil
}

// PaymentsInState lists payment ids in state updated before olderThan.
func (db *DB) PaymentsInState(ctx context.Context, state string, olderThan time.Time) ([]string, error) {
	var ids []string
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM payments WHERE state = $1 AND updated_at <= $2 ORDER BY updated_at LIMIT $3`,
			state, olderThan, sweepBatch)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s payments: %w", state, err)
	}
	return ids, nil
}
