package inventory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// TestService_500BuyersOneRow races 500 buyers for the 100 seats of one row
// with best-available holds: exactly 100 are sold, each once, and every
// buyer is told the truth.
func TestService_500BuyersOneRow(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	_, retries0 := db.TxStats()
	out := race(t, svc, 500, waitroom.HoldRequest{Section: "row", Quantity: 1})
	checkTold(t, svc, out, 100)
	checkInvariants(t, db)
	_, retries := db.TxStats()
	t.Logf("500 buyers, 100 seats in one row: %d reruns, %d real collisions", retries-retries0, db.Collisions())
}

// TestRace_NegativeControl shows that the race tests can fail: the same
// race run through a select-then-update without the protections (READ
// COMMITTED, no check that the seat is still available) sells seats twice,
// and the same check that the real path passes catches it.
func TestRace_NegativeControl(t *testing.T) {
	db := mustDB(t)
	ctx := context.Background()
	const buyers = 20
	var ready, wg sync.WaitGroup
	ready.Add(buyers)
	start := make(chan struct{})
	told := make([]string, buyers) // the seat each buyer was told they bought
	for i := range buyers {
		wg.Go(func() {
			err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
				var seat string
				err := tx.QueryRow(ctx, `SELECT id FROM seats WHERE sale_id = 't-1' AND section_id = 'row' AND state = 'AVAILABLE'
					ORDER BY number LIMIT 1`).Scan(&seat)
				ready.Done()
				<-start // everyone has read before anyone writes
				if err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `UPDATE seats SET state = 'SOLD', hold_id = $2 WHERE sale_id = 't-1' AND id = $1`, seat, fmt.Sprint("h-", i))
				told[i] = seat
				return err
			})
			if err != nil {
				t.Errorf("unprotected buyer %d: %v", i, err)
			}
		})
	}
	ready.Wait()
	close(start)
	wg.Wait()

	owners := map[string]int{}
	oversold := 0
	for _, seat := range told {
		owners[seat]++
		if owners[seat] > 1 {
			oversold++
		}
	}
	if oversold == 0 {
		t.Fatalf("the unprotected path sold no seat twice; the race check would not notice a broken store")
	}
	t.Logf("without protection, %d of %d buyers were told they bought a seat already sold", oversold, buyers)
}

// TestService_TicketLimitUnderConcurrency sends ten holds of two places
// from one fan at once, with a limit of six: at most three succeed, and
// the fan's count matches what was held.
func TestService_TicketLimitUnderConcurrency(t *testing.T) {
	db := mustDB(t)
	cfg := inventory.DefaultConfig()
	cfg.MaxTickets = 6
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), cfg)
	ctx := context.Background()
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for i := range 10 {
		wg.Go(func() {
			<-start
			h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "greedy", IdempotencyKey: fmt.Sprint("k-", i), Section: "ga", Quantity: 2})
			if err == nil {
				mu.Lock()
				held += len(h.Seats)
				mu.Unlock()
				return
			}
			if waitroom.ErrorCode(err) != waitroom.ECONFLICT {
				t.Errorf("hold %d: %v, want success or the limit", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if held != 6 {
		t.Errorf("one fan holds %d places at once, want exactly the limit of 6", held)
	}
	checkInvariants(t, db)
}
