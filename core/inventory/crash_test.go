package inventory_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// crashAfterCharge is a provider whose caller dies right after the money was
// taken: the charge reaches the real simulator, and the core never learns
// the outcome.
type crashAfterCharge struct {
	*payments.Sim
	// inner, when set, is charged instead of Sim.
	inner payments.Provider
}

func (p crashAfterCharge) provider() payments.Provider {
	if p.inner != nil {
		return p.inner
	}
	return p.Sim
}

func (p crashAfterCharge) Charge(ctx context.Context, key string, amount int64, card string) (payments.Result, error) {
	if _, err := p.provider().Charge(ctx, key, amount, card); err != nil {
		return payments.Result{}, err
	}
	return payments.Result{}, payments.ErrUnavailable
}

func (p crashAfterCharge) Status(ctx context.Context, key string) (payments.Result, error) {
	return p.provider().Status(ctx, key)
}

func (p crashAfterCharge) Refund(ctx context.Context, key string) error {
	return p.provider().Refund(ctx, key)
}

// TestService_CrashBetweenCaptureAndCommit takes the money and loses the
// answer, as a core killed between the provider's capture and its own
// commit would. The reconciler, asking the provider, sells the seats.
func TestService_CrashBetweenCaptureAndCommit(t *testing.T) {
	db := mustDB(t)
	sim := payments.NewSim(payments.SimConfig{})
	cfg := inventory.DefaultConfig()
	svc := mustService(t, db, crashAfterCharge{Sim: sim}, cfg)
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
	if _, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: "a", Card: "4242424242424242"}); waitroom.ErrorCode(err) != waitroom.EUNAVAILABLE {
		t.Fatalf("pay with a lost answer = %v, want unavailable", err)
	}

	// A new core after the crash: its sweeper reconciles once the checkout
	// time has run out.
	restarted := mustService(t, db, sim, cfg)
	clock.advance(cfg.CheckoutTTL + time.Minute)
	restarted.SetClock(clock.now)
	restarted.Sweep(ctx)

	got, err := restarted.FindHoldByID(ctx, h.ID, "a")
	if err != nil || got.State != waitroom.HoldSold || got.OrderID == "" {
		t.Fatalf("hold after reconciliation = %+v, %v; want SOLD with an order", got, err)
	}
	captured, refunds := sim.Totals()
	if captured != got.TotalCents || refunds != 0 {
		t.Errorf("provider holds %d cents and %d refunds, want %d and 0", captured, refunds, got.TotalCents)
	}
	checkInvariants(t, db)
}

// commitCutter is a TCP proxy in front of PostgreSQL that, when armed,
// forwards the COMMIT of the next transaction that inserted a hold to the
// server and then cuts the connection before the server's answer reaches
// the client. The client cannot tell whether its transaction committed.
type commitCutter struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
	// minHolds is how many holds a transaction must insert to be cut; 0
	// counts as 1.
	minHolds int
	cuts     atomic.Int64
	wg       sync.WaitGroup
}

func startCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{ln: ln, target: target}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		c.wg.Wait()
	})
	return c
}

func (c *commitCutter) accept() {
	defer c.wg.Done()
	for {
		client, err := c.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", c.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			_, _ = io.Copy(client, server)
			_ = client.Close()
		}()
		go func() {
			defer c.wg.Done()
			c.forward(client, server)
			_ = server.Close()
		}()
	}
}

// forward copies client messages to the server one by one; the first
// message of a connection has no type byte. It follows both protocols: a
// simple query carries its SQL, and an extended-protocol Bind names a
// statement whose SQL an earlier Parse carried. A COMMIT of a transaction
// that inserted a hold is cut once the server has it: at the simple query
// itself, or at the Sync that ends a pipelined batch.
func (c *commitCutter) forward(client, server net.Conn) {
	first := true
	statements := map[string]string{} // prepared statement name → SQL
	insertedHolds, commitSent := 0, false
	for {
		var head []byte
		if first {
			head = make([]byte, 4)
		} else {
			head = make([]byte, 5)
		}
		if _, err := io.ReadFull(client, head); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(head[len(head)-4:])
		body := make([]byte, int(n)-4)
		if _, err := io.ReadFull(client, body); err != nil {
			return
		}
		if _, err := server.Write(append(head, body...)); err != nil {
			return
		}
		if first {
			first = false
			continue
		}
		var sql string
		switch head[0] {
		case 'Q':
			sql = cString(body, 0)
		case 'P':
			name := cString(body, 0)
			statements[name] = cString(body, 1)
			continue
		case 'B':
			sql = statements[cString(body, 1)]
		case 'S':
			if commitSent && insertedHolds >= max(c.minHolds, 1) && c.cut(client) {
				return
			}
			insertedHolds, commitSent = 0, false
			continue
		default:
			continue
		}
		if strings.Contains(sql, "INSERT INTO holds") {
			insertedHolds++
		}
		if !strings.EqualFold(strings.TrimRight(strings.TrimSpace(sql), ";"), "commit") {
			continue
		}
		if head[0] == 'Q' && insertedHolds >= max(c.minHolds, 1) && c.cut(client) {
			return
		}
		commitSent = head[0] == 'B'
		if head[0] == 'Q' {
			insertedHolds = 0
		}
	}
}

// cut closes the client's side once, when armed. The server has the COMMIT
// by then, and the client must not get the reply, which the other goroutine
// would relay. The cut is counted first, because the client may look as
// soon as it is closed.
func (c *commitCutter) cut(client net.Conn) bool {
	if !c.armed.CompareAndSwap(true, false) {
		return false
	}
	c.cuts.Add(1)
	_ = client.Close()
	return true
}

// cString returns the i-th NUL-terminated string of a message body.
func cString(body []byte, i int) string {
	for ; i > 0; i-- {
		k := bytes.IndexByte(body, 0)
		if k < 0 {
			return ""
		}
		body = body[k+1:]
	}
	if k := bytes.IndexByte(body, 0); k >= 0 {
		body = body[:k]
	}
	return string(body)
}

// TestService_CommitOutcomeUnknown cuts the connection during COMMIT of a
// hold. The store must say the outcome is unknown, not guess, and a retry
// with the same idempotency key must return the hold that did commit.
func TestService_CommitOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	direct := pgtest.Start(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	cutter := startCommitCutter(t, u.Host)
	u.Host = cutter.ln.Addr().String()
	db, err := postgres.Open(ctx, u.String(), 4, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.LoadCatalog(ctx, testCatalog()); err != nil {
		t.Fatal(err)
	}
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	req := waitroom.HoldRequest{SaleID: "t-1", Session: "a", IdempotencyKey: "once", SeatIDs: []string{"one-1-1"}}

	cutter.armed.Store(true)
	_, err = svc.Hold(ctx, req)
	if cutter.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1 (err %v)", cutter.cuts.Load(), err)
	}
	if !errors.Is(err, waitroom.ErrCommitUnknown) || waitroom.ErrorCode(err) != waitroom.EUNAVAILABLE {
		t.Fatalf("hold with a cut COMMIT = %v, want the commit-unknown error", err)
	}
	h, err := svc.Hold(ctx, req)
	if err != nil || len(h.Seats) != 1 || h.Seats[0].ID != "one-1-1" {
		t.Fatalf("retry with the same key = %+v, %v; want the committed hold of one-1-1", h, err)
	}
	// Only one hold exists for the seat: the retry did not make another.
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM holds WHERE session = 'a'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("holds of the session = %d, %v; want 1", n, err)
	}
	checkInvariants(t, db)
}

// TestService_ConcurrentHoldsCommitOutcomeUnknown cuts the COMMIT of a
// group transaction while 12 fans hold seats at once through one lane.
// Every fan whose request returned the commit-unknown error retries with
// the same key and gets exactly one hold: the one that committed, or a
// new one. No seat ends up in two holds.
func TestService_ConcurrentHoldsCommitOutcomeUnknown(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	cutter := startCommitCutter(t, u.Host)
	cutter.minHolds = 2 // a group transaction
	u.Host = cutter.ln.Addr().String()
	db, err := postgres.Open(ctx, u.String(), 8, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.LoadCatalog(ctx, testCatalog()); err != nil {
		t.Fatal(err)
	}
	db.SetGroupLanes(1)
	svc := mustService(t, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())

	const fans = 12
	requests := make([]waitroom.HoldRequest, fans)
	for i := range requests {
		requests[i] = waitroom.HoldRequest{SaleID: "t-1", Session: fmt.Sprintf("fan-%02d", i), IdempotencyKey: "once", Section: "row", Quantity: 2}
	}
	cutter.armed.Store(true)
	start := make(chan struct{})
	errs := make([]error, fans)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			<-start
			_, errs[i] = svc.Hold(ctx, requests[i])
		})
	}
	close(start)
	wg.Wait()
	if cutter.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d commits, want 1", cutter.cuts.Load())
	}

	unknown := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, waitroom.ErrCommitUnknown) {
			t.Errorf("fan %d: hold = %v, want success or the commit-unknown error", i, err)
			continue
		}
		unknown++
		if _, err := svc.Hold(ctx, requests[i]); err != nil {
			t.Errorf("fan %d: retry with the same key = %v, want a hold", i, err)
		}
	}
	if unknown < 2 {
		t.Errorf("%d fans were told that the outcome is unknown, want every fan of the cut group", unknown)
	}
	t.Logf("%d of %d fans were told that the outcome is unknown", unknown, fans)

	var holds, sessions int
	err = db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT session) FROM holds WHERE state = 'HELD'`).Scan(&holds, &sessions)
	if err != nil {
		t.Fatal(err)
	}
	if holds != fans || sessions != fans {
		t.Errorf("%d live holds of %d sessions, want one for each of %d fans", holds, sessions, fans)
	}
	checkInvariants(t, db)
}
