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

// DueHold is a live hold whose time ran out, with its payment id ("" when
// the fan never paid).
type DueHold struct {
	HoldID    string
	SaleID    string
	State     string
	PaymentID string
}

// DueHolds returns live holds whose time ran out, at most sweepBatch.
//
// hold_deadlines holds a lower bound of each live hold's expiry: the hold
// transaction inserts it, and nothing inside a serializable transaction
// reads or changes it afterwards, so it adds no false conflicts. Here, in
// READ COMMITTED, the rows that are due are tidied: a row of an ended hold
// is deleted, and a row whose hold moved to a later expiry (checkout) is
// moved with it. Only holds really due are returned, and their callers
// check them again inside a serializable transaction.
func (db *DB) DueHolds(ctx context.Context, now time.Time) ([]DueHold, error) {
	var due []DueHold
	err := db.readCommitted(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT d.hold_id, h.sale_id, h.state, h.expires_at, COALESCE(p.id, '')
			FROM hold_deadlines d JOIN holds h ON h.id = d.hold_id LEFT JOIN payments p ON p.id = 'p_' || h.id
			WHERE d.expires_at <= $1 ORDER BY d.expires_at LIMIT $2`, now, sweepBatch)
		if err != nil {
			return err
		}
		type row struct {
			d       DueHold
			expires time.Time
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.d.HoldID, &x.d.SaleID, &x.d.State, &x.expires, &x.d.PaymentID)
			return x, err
		})
		if err != nil {
			return err
		}
		for _, x := range list {
			switch {
			case x.d.State != "HELD" && x.d.State != "CHECKOUT":
				_, err = tx.Exec(ctx, `DELETE FROM hold_deadlines WHERE hold_id = $1`, x.d.HoldID)
			case now.Before(x.expires):
				_, err = tx.Exec(ctx, `UPDATE hold_deadlines SET expires_at = $2 WHERE hold_id = $1`, x.d.HoldID, x.expires)
			default:
				due = append(due, x.d)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list due holds: %w", err)
	}
	return due, nil
}

// ExpireHeld releases a cart whose time ran out; it reports whether it did.
func (db *DB) ExpireHeld(ctx context.Context, holdID string, now time.Time) (bool, error) {
	var released bool
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		released = false
		h, err := loadHold(ctx, tx, holdID)
		if err != nil {
			return err
		}
		if h.State != "HELD" || now.Before(h.ExpiresAt) {
			return nil
		}
		released = true
		return freeSeats(ctx, tx, h, "EXPIRED", now)
	})
	if err != nil {
		return false, fmt.Errorf("expire hold %s: %w", holdID, err)
	}
	return released, nil
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
		return freeSeats(ctx, tx, h, "EXPIRED", now)
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
