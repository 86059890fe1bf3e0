package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// TestingKnobs weaken the store on purpose. Tests of this and other packages
// set them to show that their checks catch what the real code prevents.
// Production code leaves them zero.
type TestingKnobs struct {
	// RacyTicketLimit, when set, moves the per-fan ticket limit check out of
	// the hold transaction. A hold then reads the fan's count in a separate
	// READ COMMITTED transaction and compares it with the limit. Next it
	// calls RacyTicketLimit, and at last it adds its places to the count
	// without checking again. Two sessions of one fan can thus both pass
	// the check: the check-then-act race that countTickets prevents.
	// RacyTicketLimit may run more than once per hold request, and must
	// return.
	RacyTicketLimit func()
}

// SetTestingKnobs sets the knobs. Call it before the DB is used from more
// than one goroutine.
func (db *DB) SetTestingKnobs(k TestingKnobs) { db.knobs = k }

// racyLimitCheck returns the limit for the hold transaction to enforce. That
// is max, unless the RacyTicketLimit knob is set. Then it checks the limit
// outside the transaction and returns a limit that no fan reaches.
func (db *DB) racyLimitCheck(ctx context.Context, saleID, fan string, want, max int) (int, error) {
	hook := db.knobs.RacyTicketLimit
	if hook == nil || max <= 0 {
		return max, nil
	}
	var have int
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT tickets FROM fan_tickets WHERE sale_id = $1 AND fan = $2`, saleID, fan).Scan(&have)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read tickets of fan: %w", err)
	}
	if have+want > max {
		return 0, waitroom.Errorf(waitroom.ECONFLICT, "ticket limit is %d per fan for this show; you have %d", max, have)
	}
	hook()
	// Still count, so the count stays equal to the fan's places, but never
	// reject.
	return math.MaxInt32, nil
}
