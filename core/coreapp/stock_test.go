package coreapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// TestCore_SellOutClosesQueue holds every place of the show while 20 fans
// wait, and checks that the queue closes for all of them, that nobody is
// admitted while it is closed even at a high rate, that the stock bucket
// shows nothing left, and that the queue reopens when a hold is released.
func TestCore_SellOutClosesQueue(t *testing.T) {
	h := newHarness(t)
	h.cfg.Initial.RatePerMinute = 0 // no fan is admitted before the places run out
	core := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer core.stop()
	_, js := natstest.MustConnect(t, h.url)
	var adm admissions
	f := adm.follow(t, h.url)
	ctx := context.Background()
	for i := range 20 {
		if _, err := natsq.Join(ctx, js, sale, fmt.Sprintf("w%02d", i), wire.DefaultLane, "test"); err != nil {
			t.Fatal(err)
		}
	}

	// Buyers outside the queue take every place.
	var holds []*waitroom.Hold
	n := 0
	for _, section := range []string{"pista", "g1", "g2", "g3", "g4"} {
		for _, qty := range []int{4, 1} {
			for {
				n++
				session := fmt.Sprintf("buyer%03d", n)
				hold, err := core.core.Inventory.Hold(ctx, waitroom.HoldRequest{SaleID: sale, Session: session, IdempotencyKey: "k", Section: section, Quantity: qty})
				if waitroom.ErrorCode(err) == waitroom.ESOLDOUT {
					break
				}
				if err != nil {
					t.Fatalf("hold %d in %s: %v", qty, section, err)
				}
				holds = append(holds, hold)
			}
		}
	}
	gone := time.Now()
	eventually.Check(t, 5*time.Second, func() error {
		var open []string
		f.Do(func(st *queue.State) {
			for i := range 20 {
				id := fmt.Sprintf("w%02d", i)
				if v := st.Lookup(id, time.Now()); v.State != queue.Closed || v.Closed != "sold_out" {
					open = append(open, id+"="+v.State)
				}
			}
		})
		if len(open) > 0 {
			return fmt.Errorf("not told sold out: %v", open)
		}
		return nil
	})
	t.Logf("every waiting fan saw the close %v after the last place went", time.Since(gone).Round(time.Millisecond))

	kv, err := js.KeyValue(ctx, wire.StockBucket)
	if err != nil {
		t.Fatal(err)
	}
	eventually.Check(t, 5*time.Second, func() error {
		e, err := kv.Get(ctx, sale)
		if err != nil {
			return err
		}
		var st wire.Stock
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return err
		}
		if st.Available != 0 || len(st.Tiers) != 2 || st.PlacesPerFan != 2 {
			return fmt.Errorf("stock = %+v, want nothing left in 2 tiers", st)
		}
		return nil
	})

	if err := core.core.SetControl(ctx, sale, wire.Control{RatePerMinute: 6000, Cap: 40, ShoppingSeconds: 600}, "test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // four controller ticks at the new rate, on a closed queue
	if got := adm.snapshot(); len(got) != 0 {
		t.Fatalf("admitted %v while the show was sold out", got)
	}

	// A released hold brings places back: the queue reopens and admits.
	last := holds[len(holds)-1]
	if _, err := core.core.Inventory.Release(ctx, last.ID, last.Session); err != nil {
		t.Fatal(err)
	}
	eventually.Check(t, 5*time.Second, func() error {
		if n := len(adm.snapshot()); n != 20 {
			return fmt.Errorf("%d of 20 admitted after the reopening", n)
		}
		return nil
	})
}
