package inventory_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/waitroom"
)

type outcome struct {
	session string
	order   *waitroom.Order
	err     error
}

// buy runs the whole state machine for one fan: hold, checkout, pay.
func buy(ctx context.Context, svc *inventory.Service, session string, req waitroom.HoldRequest) outcome {
	if req.SaleID == "" {
		req.SaleID = "t-1"
	}
	req.Session, req.IdempotencyKey = session, "k-"+session
	h, err := svc.Hold(ctx, req)
	if err != nil {
		return outcome{session: session, err: err}
	}
	if _, err := svc.Checkout(ctx, h.ID, session); err != nil {
		return outcome{session: session, err: err}
	}
	res, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: session, Card: "4242424242424242"})
	if err != nil {
		return outcome{session: session, err: err}
	}
	return outcome{session: session, order: res.Order}
}

// race starts n buyers behind a barrier and returns what each was told.
func race(t *testing.T, svc *inventory.Service, n int, req waitroom.HoldRequest) []outcome {
	t.Helper()
	start := make(chan struct{})
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = buy(context.Background(), svc, fmt.Sprintf("fan-%03d", i), req)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// checkTold compares what buyers were told with the database: a buyer told
// "you have an order" owns exactly those sold seats, a buyer told no owns
// nothing, and the winners together hold every place exactly once.
func checkTold(t *testing.T, svc *inventory.Service, out []outcome, wantSold int) {
	t.Helper()
	ctx := context.Background()
	var sales []soldPlace
	for _, o := range out {
		if o.err != nil {
			if c := waitroom.ErrorCode(o.err); c != waitroom.ESOLDOUT && c != waitroom.ECONFLICT {
				t.Errorf("%s told %v; want sold_out or conflict", o.session, o.err)
			}
			continue
		}
		got, err := svc.FindOrderByID(ctx, o.order.ID, o.session)
		if err != nil || got.State != waitroom.OrderPaid || len(got.Seats) != len(o.order.Seats) {
			t.Errorf("%s told order %s, database has %+v, %v", o.session, o.order.ID, got, err)
			continue
		}
		for _, s := range got.Seats {
			sales = append(sales, soldPlace{buyer: o.session, seat: s.ID})
		}
	}
	for _, d := range doubleSales(sales) {
		t.Error(d)
	}
	if len(sales) != wantSold {
		t.Errorf("sold %d places, want %d", len(sales), wantSold)
	}
}

// soldPlace is one place that a buyer was told they bought.
type soldPlace struct{ buyer, seat string }

// doubleSales returns one line for every place that more than one buyer
// was told they bought.
func doubleSales(sales []soldPlace) []string {
	owner := map[string]string{}
	var out []string
	for _, s := range sales {
		if prev, dup := owner[s.seat]; dup {
			out = append(out, fmt.Sprintf("seat %s sold to %s and %s", s.seat, prev, s.buyer))
			continue
		}
		owner[s.seat] = s.buyer
	}
	return out
}

func TestService_ConcurrentBuyers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		section string
	}{
		{"seated", "s"},
		{"standing", "ga"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := mustDB(t)
			svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
			out := race(t, svc, 200, waitroom.HoldRequest{Section: tt.section, Quantity: 1})
			checkTold(t, svc, out, 50)
			checkInvariants(t, db)
			_, retries := db.TxStats()
			t.Logf("200 buyers, 50 places: %d transaction retries", retries)
		})
	}
}

func TestService_LastSeat(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	out := race(t, svc, 2, waitroom.HoldRequest{SeatIDs: []string{"one-1-1"}})
	checkTold(t, svc, out, 1)
	checkInvariants(t, db)
}

func TestService_HoldIdempotent(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	ctx := context.Background()
	req := waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "same", Section: "s", Quantity: 2}
	h1, err := svc.Hold(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := svc.Hold(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if h1.ID != h2.ID || len(h2.Seats) != 2 {
		t.Errorf("retried hold = %s with %d seats, want %s with 2", h2.ID, len(h2.Seats), h1.ID)
	}
	checkInvariants(t, db)
}

func TestService_TicketLimit(t *testing.T) {
	db := mustDB(t)
	cfg := inventory.DefaultConfig()
	cfg.MaxTickets = 4
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), cfg)
	ctx := context.Background()
	if _, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", Section: "s", Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "2", Section: "ga", Quantity: 2})
	if waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("hold over the limit = %v, want conflict", err)
	}
}

func TestService_BadRequests(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	ctx := context.Background()
	tests := []struct {
		name string
		req  waitroom.HoldRequest
		code string
	}{
		{"no_key", waitroom.HoldRequest{Section: "s", Quantity: 1}, waitroom.EINVALID},
		{"zero_quantity", waitroom.HoldRequest{IdempotencyKey: "k", Section: "s"}, waitroom.EINVALID},
		{"too_many", waitroom.HoldRequest{IdempotencyKey: "k", Section: "s", Quantity: 99}, waitroom.EINVALID},
		{"both", waitroom.HoldRequest{IdempotencyKey: "k", Section: "s", Quantity: 1, SeatIDs: []string{"s-1-1"}}, waitroom.EINVALID},
		{"duplicate_seat", waitroom.HoldRequest{IdempotencyKey: "k", SeatIDs: []string{"s-1-1", "s-1-1"}}, waitroom.EINVALID},
		{"unknown_section", waitroom.HoldRequest{IdempotencyKey: "k", Section: "nope", Quantity: 1}, waitroom.ENOTFOUND},
		{"unknown_seat", waitroom.HoldRequest{IdempotencyKey: "k", SeatIDs: []string{"s-9-9"}}, waitroom.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.SaleID, tt.req.Session = "t-1", "a"
			_, err := svc.Hold(ctx, tt.req)
			if got := waitroom.ErrorCode(err); got != tt.code {
				t.Errorf("Hold = %v, want code %s", err, tt.code)
			}
		})
	}
	checkInvariants(t, db)
}

func TestService_HoldExpiresAndSweeps(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	clock := &fakeClock{t: time.Now()}
	svc.SetClock(clock.now)
	ctx := context.Background()

	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", SeatIDs: []string{"one-1-1"}})
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(11 * time.Minute)
	svc.Sweep(ctx)

	got, err := svc.FindHoldByID(ctx, h.ID, "a")
	if err != nil || got.State != waitroom.HoldExpired {
		t.Fatalf("hold after sweep = %+v, %v; want EXPIRED", got, err)
	}
	if _, err := svc.Checkout(ctx, h.ID, "a"); waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("checkout of expired hold = %v, want conflict", err)
	}
	// The seat is back on sale.
	o := buy(ctx, svc, "b", waitroom.HoldRequest{SeatIDs: []string{"one-1-1"}})
	if o.err != nil {
		t.Errorf("buying the released seat: %v", o.err)
	}
	checkInvariants(t, db)
}

func TestService_UnpaidCheckoutExpires(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	clock := &fakeClock{t: time.Now()}
	svc.SetClock(clock.now)
	ctx := context.Background()
	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", Section: "ga", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkout(ctx, h.ID, "a"); err != nil {
		t.Fatal(err)
	}
	clock.advance(16 * time.Minute)
	svc.Sweep(ctx)
	got, err := svc.FindHoldByID(ctx, h.ID, "a")
	if err != nil || got.State != waitroom.HoldExpired {
		t.Fatalf("hold after sweep = %+v, %v; want EXPIRED", got, err)
	}
	checkInvariants(t, db)
}

// TestService_PaymentAfterExpiryRefunded sends a charge that reaches the
// provider only after the checkout expired and the sweeper, finding no
// payment, released the seats. The late capture must be refunded.
func TestService_PaymentAfterExpiryRefunded(t *testing.T) {
	db := mustDB(t)
	sim := payments.NewSim(payments.SimConfig{ArrivalDelay: 500 * time.Millisecond})
	cfg := inventory.DefaultConfig()
	cfg.CheckoutTTL = 200 * time.Millisecond
	svc := mustService(t, db, sim, cfg)
	ctx := context.Background()

	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", SeatIDs: []string{"one-1-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkout(ctx, h.ID, "a"); err != nil {
		t.Fatal(err)
	}
	paid := make(chan error, 1)
	go func() {
		_, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "a", Card: "4242424242424242"})
		paid <- err
	}()
	// Sweep until the hold has expired, while the charge is still in flight.
	eventually.Check(t, 5*time.Second, func() error {
		svc.Sweep(ctx)
		got, err := svc.FindHoldByID(ctx, h.ID, "a")
		if err != nil {
			return err
		}
		if got.State != waitroom.HoldExpired {
			return fmt.Errorf("hold is %s", got.State)
		}
		return nil
	})
	err = <-paid
	if waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("late payment told %v, want conflict (refunded)", err)
	}
	captured, refunds := sim.Totals()
	if captured != 0 || refunds != 1 {
		t.Errorf("provider has %d cents captured and %d refunds, want 0 and 1", captured, refunds)
	}
	checkInvariants(t, db)
}

func TestService_Declined(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	ctx := context.Background()
	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", SeatIDs: []string{"one-1-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkout(ctx, h.ID, "a"); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "a", Card: payments.DeclineCard})
	if err != nil || res.Declined == "" || res.Order != nil || res.Hold.State != waitroom.HoldReleased {
		t.Fatalf("declined pay = %+v, %v", res, err)
	}
	// A retry returns the same outcome and charges nothing.
	res, err = svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "a", Card: "4242424242424242"})
	if err != nil || res.Order != nil {
		t.Errorf("pay retry after decline = %+v, %v; want no order", res, err)
	}
	if o := buy(ctx, svc, "b", waitroom.HoldRequest{SeatIDs: []string{"one-1-1"}}); o.err != nil {
		t.Errorf("seat not back on sale after decline: %v", o.err)
	}
	checkInvariants(t, db)
}

func TestService_CancelOrderOnce(t *testing.T) {
	db := mustDB(t)
	sim := payments.NewSim(payments.SimConfig{})
	svc := mustService(t, db, sim, inventory.DefaultConfig())
	ctx := context.Background()
	a := buy(ctx, svc, "a", waitroom.HoldRequest{SeatIDs: []string{"one-1-1"}})
	if a.err != nil {
		t.Fatal(a.err)
	}
	o, err := svc.CancelOrder(ctx, a.order.ID, "a")
	if err != nil || o.State != waitroom.OrderRefunded {
		t.Fatalf("cancel = %+v, %v; want REFUNDED", o, err)
	}
	if _, refunds := sim.Totals(); refunds != 1 {
		t.Errorf("refunds = %d, want 1", refunds)
	}
	// The seat is back on sale; another fan buys it.
	b := buy(ctx, svc, "b", waitroom.HoldRequest{SeatIDs: []string{"one-1-1"}})
	if b.err != nil {
		t.Fatalf("buying the cancelled seat: %v", b.err)
	}
	// Cancelling again changes nothing: the seat stays sold to b.
	if _, err := svc.CancelOrder(ctx, a.order.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.FindOrderByID(ctx, b.order.ID, "b"); err != nil || got.State != waitroom.OrderPaid || len(got.Seats) != 1 {
		t.Errorf("b's order after a second cancel of a's = %+v, %v", got, err)
	}
	if _, refunds := sim.Totals(); refunds != 1 {
		t.Errorf("refunds after a second cancel = %d, want 1", refunds)
	}
	if _, err := svc.CancelOrder(ctx, b.order.ID, "a"); waitroom.ErrorCode(err) != waitroom.ENOTFOUND {
		t.Errorf("cancel of another fan's order = %v, want not_found", err)
	}
	checkInvariants(t, db)
}

func TestLoadCatalog_BlockedPlaces(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.Start(t), 10, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := testCatalog()
	c.Shows[0].ID = "blocked-1"
	secs := c.Venues[0].Sections
	secs[0].Blocked = []string{"1-1", "1-2"} // two seats of section s for the mixing desk
	secs[1].BlockedPlaces = 10               // ten standing places sold elsewhere
	if _, err := db.LoadCatalog(ctx, c); err != nil {
		t.Fatal(err)
	}
	m, err := db.FindSeatMap(ctx, "blocked-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"s": 48, "ga": 40, "one": 1, "row": 100}
	for _, s := range m.Sections {
		if s.Capacity != want[s.ID] || s.Available != want[s.ID] {
			t.Errorf("section %s: capacity %d, available %d; want %d", s.ID, s.Capacity, s.Available, want[s.ID])
		}
	}
	if m.Sale.Capacity != 189 {
		t.Errorf("sale capacity = %d, want 189", m.Sale.Capacity)
	}
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	_, err = svc.Hold(ctx, waitroom.HoldRequest{SaleID: "blocked-1", Session: "a", IdempotencyKey: "k", SeatIDs: []string{"s-1-1"}})
	if waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("holding a blocked seat = %v, want conflict", err)
	}
	checkInvariants(t, db)
}

func TestService_HoldByTier(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	ctx := context.Background()
	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", Tier: "t", Quantity: 2})
	if err != nil || len(h.Seats) != 2 {
		t.Fatalf("hold by tier = %+v, %v", h, err)
	}
	// Standing "ga" has rank 0, the nearest the stage in tier t.
	for _, s := range h.Seats {
		if s.Section != "ga" {
			t.Errorf("seat %s in section %s, want the nearest section ga", s.ID, s.Section)
		}
	}
	if _, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "b", IdempotencyKey: "1", Tier: "nope", Quantity: 1}); waitroom.ErrorCode(err) != waitroom.ENOTFOUND {
		t.Errorf("unknown tier = %v, want not_found", err)
	}
	checkInvariants(t, db)
}

func TestService_SplitOnlyWhenAgreed(t *testing.T) {
	db := mustDB(t)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	ctx := context.Background()
	// Take every third seat of the 50-seat row, so no three free seats
	// are together.
	for i := 3; i <= 48; i += 3 {
		req := waitroom.HoldRequest{SaleID: "t-1", Session: fmt.Sprint("taker-", i), IdempotencyKey: "1", SeatIDs: []string{fmt.Sprintf("s-1-%d", i)}}
		if _, err := svc.Hold(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	req := waitroom.HoldRequest{SaleID: "t-1", Session: "fan", IdempotencyKey: "1", Section: "s", Quantity: 3}
	if _, err := svc.Hold(ctx, req); waitroom.ErrorCode(err) != waitroom.ESOLDOUT {
		t.Fatalf("3 together with none left = %v, want sold_out", err)
	}
	req.IdempotencyKey, req.AllowSplit = "2", true
	h, err := svc.Hold(ctx, req)
	if err != nil || len(h.Seats) != 3 {
		t.Fatalf("3 split after agreeing = %+v, %v", h, err)
	}
	checkInvariants(t, db)
}

// TestService_PayOnAnotherReplica checks out on one core replica and pays
// on another, which does not remember the checkout: the second finds the
// payment that checkout recorded, charges it once and sells the seats.
func TestService_PayOnAnotherReplica(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, url, 8, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	first, second := open(), open()
	if _, err := first.LoadCatalog(ctx, testCatalog()); err != nil {
		t.Fatal(err)
	}
	sim := payments.NewSim(payments.SimConfig{})
	a := mustService(t, first, sim, inventory.DefaultConfig())
	b := mustService(t, second, sim, inventory.DefaultConfig())

	h, err := a.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "s", IdempotencyKey: "1", Section: "s", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Checkout(ctx, h.ID, "s"); err != nil {
		t.Fatal(err)
	}
	res, err := b.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "s", Card: "4242424242424242"})
	if err != nil {
		t.Fatalf("pay on the other replica: %v", err)
	}
	if res.Order == nil || len(res.Order.Seats) != 2 || res.Hold.State != waitroom.HoldSold {
		t.Errorf("pay on the other replica = %+v, want a sold hold with an order of 2 seats", res)
	}
	captured, refunds := sim.Totals()
	if captured != h.TotalCents || refunds != 0 {
		t.Errorf("provider has %d cents captured and %d refunds, want %d and 0", captured, refunds, h.TotalCents)
	}
	checkInvariants(t, first)
}

// TestService_PayBeforeCheckout pays for a cart that never went to
// checkout. The hold has a pending payment record from the start, but the
// request must be rejected and the provider never charged.
func TestService_PayBeforeCheckout(t *testing.T) {
	db := mustDB(t)
	sim := payments.NewSim(payments.SimConfig{})
	svc := mustService(t, db, sim, inventory.DefaultConfig())
	ctx := context.Background()
	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "1", Section: "s", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "a", Card: "4242424242424242"})
	if waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("pay before checkout = %v, want conflict", err)
	}
	if captured, refunds := sim.Totals(); captured != 0 || refunds != 0 {
		t.Errorf("provider has %d cents captured and %d refunds, want 0 and 0: it was charged", captured, refunds)
	}
	checkInvariants(t, db)
}
