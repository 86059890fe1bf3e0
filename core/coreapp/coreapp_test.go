package coreapp_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/coreapp"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const sale = "smoke-1"

type harness struct {
	t      *testing.T
	url    string // NATS
	dbURL  string
	key    ed25519.PrivateKey
	signer *token.Signer
	log    *slog.Logger
	cfg    coreapp.Config
}

func newHarness(t *testing.T) *harness {
	srv := natstest.Run(t)
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := coreapp.DefaultConfig()
	cfg.Initial = wire.Control{RatePerMinute: 3000, Cap: 40, ShoppingSeconds: 600}
	cfg.Admission.Tick = 50 * time.Millisecond
	h := &harness{t: t, url: srv.URL, dbURL: pgtest.Start(t), key: key, signer: token.NewSigner(key), cfg: cfg,
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	db := h.openDB(context.Background())
	defer db.Close()
	c, err := catalog.Builtin("smoke")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LoadCatalog(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) openDB(ctx context.Context) *postgres.DB {
	db, err := postgres.Open(ctx, h.dbURL, 20, h.log)
	if err != nil {
		h.t.Fatalf("open db: %v", err)
	}
	return db
}

// running is one core replica with its own connection and pool, as a
// separate process would have.
type running struct {
	core   *coreapp.Core
	nc     *nats.Conn
	db     *postgres.DB
	cancel context.CancelFunc
}

func (h *harness) startCore(sim payments.Provider) *running {
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := nats.Connect(h.url)
	if err != nil {
		h.t.Fatal(err)
	}
	db := h.openDB(ctx)
	c, err := coreapp.New(h.cfg, nc, db, sim, token.NewVerifier(h.key.Public().(ed25519.PublicKey)), h.log)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		h.t.Fatalf("start core: %v", err)
	}
	return &running{core: c, nc: nc, db: db, cancel: cancel}
}

// kill stops a core the way a crash would: its goroutines' context ends and
// its connections drop, with no cleanup and no goodbye.
func (r *running) kill() {
	r.core.Crash()
	r.cancel()
	r.nc.Close()
	r.db.Close()
}

func (r *running) stop() {
	_ = r.core.Close()
	r.cancel()
	r.nc.Close()
	r.db.Close()
}

// storeCall sends one inventory request over NATS, as an edge does.
func storeCall(ctx context.Context, nc *nats.Conn, subject string, req wire.StoreRequest, out any) error {
	req.V = wire.Version
	body, _ := json.Marshal(req)
	// A request that reached a core just before it died gets no answer;
	// like an edge, give up on it after a while and retry.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: err.Error()}
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return err
	}
	if err := reply.Err(); err != nil {
		return err
	}
	return json.Unmarshal(reply.Data, out)
}

// buyer runs one admitted fan's purchase, retrying while the core is away.
// It returns the order, or nil when nothing was left.
func buyer(ctx context.Context, nc *nats.Conn, tok, session string, rng *rand.Rand) (*waitroom.Order, error) {
	retry := func(fn func() error) error {
		for {
			err := fn()
			if waitroom.ErrorCode(err) != waitroom.EUNAVAILABLE {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	var h waitroom.Hold
	qty := 1 + rng.IntN(4)
	sections := []string{"pista", "g1", "g2", "g3", "g4"}
	start := rng.IntN(len(sections))
	var err error
	for i := range sections {
		section := sections[(start+i)%len(sections)]
		err = retry(func() error {
			return storeCall(ctx, nc, wire.SubjectHold, wire.StoreRequest{Token: tok, IdempotencyKey: "h-" + section + "-" + session, Section: section, Quantity: qty}, &h)
		})
		if c := waitroom.ErrorCode(err); c != waitroom.ESOLDOUT && c != waitroom.ECONFLICT {
			break
		}
	}
	if c := waitroom.ErrorCode(err); c == waitroom.ESOLDOUT || c == waitroom.ECONFLICT {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	if err := retry(func() error {
		return storeCall(ctx, nc, wire.SubjectCheckout, wire.StoreRequest{Token: tok, HoldID: h.ID}, &h)
	}); err != nil {
		return nil, fmt.Errorf("checkout: %w", err)
	}
	var res waitroom.PayResult
	if err := retry(func() error {
		return storeCall(ctx, nc, wire.SubjectPay, wire.StoreRequest{Token: tok, HoldID: h.ID, Card: "4242424242424242"}, &res)
	}); err != nil {
		return nil, fmt.Errorf("pay: %w", err)
	}
	return res.Order, nil
}

// TestCore_KilledMidSale runs a sale with 400 fans and buyers, kills the
// core while admissions and purchases are in flight, starts a new one on the
// same stream and database, and checks that no queued fan was lost, no fan
// was admitted twice, and no seat was sold twice.
func TestCore_KilledMidSale(t *testing.T) {
	h := newHarness(t)
	sim := payments.NewSim(payments.SimConfig{Latency: 5 * time.Millisecond})
	first := h.startCore(sim)

	nc, js := natstest.MustConnect(t, h.url)
	watch := natsq.NewFollower(js, sale, wire.Control{}, h.log)
	admitted := make(chan string, 1000)
	var mu sync.Mutex
	admitCount := map[string]int{}
	watch.OnApply = func(_ uint64, _ wire.QueueMsg, res queue.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range res.Admitted {
			admitCount[s]++
			admitted <- s
		}
	}
	if err := watch.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer watch.Close()

	const fans = 400
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range fans {
		if _, err := natsq.Join(ctx, js, sale, fmt.Sprintf("s-%03d", i), wire.DefaultLane, "test"); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	var ordersMu sync.Mutex
	var orders []*waitroom.Order
	var buyErrs []error
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				var s string
				select {
				case s = <-admitted:
				case <-ctx.Done():
					return
				}
				tok := h.signer.Sign(token.NewAdmission(sale, s, time.Now(), time.Now().Add(10*time.Minute)))
				o, err := buyer(ctx, nc, tok, s, rng)
				if o == nil && err == nil {
					// Nothing left for this fan: leaving frees the slot.
					_, _ = natsq.Publish(ctx, js, sale, wire.QueueMsg{Kind: wire.KindLeave, Session: s}, "leave:"+s)
				}
				ordersMu.Lock()
				if err != nil {
					buyErrs = append(buyErrs, fmt.Errorf("%s: %w", s, err))
				}
				if o != nil {
					orders = append(orders, o)
				}
				ordersMu.Unlock()
			}
		})
	}

	// Kill the first core once a good part of the sale is under way.
	eventually.Check(t, 60*time.Second, func() error {
		ordersMu.Lock()
		defer ordersMu.Unlock()
		if len(orders) < 60 {
			return fmt.Errorf("%d orders so far", len(orders))
		}
		return nil
	})
	first.kill()
	second := h.startCore(sim)
	defer second.stop()

	// The sale runs on to the end: sold out, or every fan admitted.
	eventually.Check(t, 80*time.Second, func() error {
		st, err := second.db.FindStock(ctx, sale)
		if err != nil {
			return err
		}
		mu.Lock()
		n := len(admitCount)
		mu.Unlock()
		// A queue closes when nothing is available; seats in carts that
		// a killed core left behind come back only after their hold time.
		if st.Available > 0 && n < fans {
			var qs queue.Stats
			second.core.Follower(sale).Do(func(q *queue.State) { qs = q.Stats(time.Now()) })
			return fmt.Errorf("%d of %d places available, %d fans admitted; queue %+v", st.Available, st.Total(), n, qs)
		}
		return nil
	})
	cancel()
	wg.Wait()

	for _, err := range buyErrs {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("buyer: %v", err)
		}
	}
	mu.Lock()
	for s, n := range admitCount {
		if n > 1 {
			t.Errorf("%s admitted %d times", s, n)
		}
	}
	mu.Unlock()

	// Every fan is still known to the new core: waiting, admitted or done.
	f := second.core.Follower(sale)
	f.Do(func(st *queue.State) {
		for i := range fans {
			s := fmt.Sprintf("s-%03d", i)
			if v := st.Lookup(s, time.Now()); v.State == queue.Unknown {
				t.Errorf("fan %s lost: %s", s, v.State)
			}
		}
	})
	checkOrders(t, second.db, orders)

	// The outbox published each sale once, across the crash.
	eventually.Check(t, 20*time.Second, func() error {
		var paid int
		if err := second.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM orders`).Scan(&paid); err != nil {
			return err
		}
		if got := streamEvents(t, js)[wire.EventSold]; got != paid {
			return fmt.Errorf("%d sold events on the stream, %d paid orders", got, paid)
		}
		return nil
	})
}

// checkOrders checks that every order a buyer was told about exists with its
// seats sold, and that no seat appears in two orders.
func checkOrders(t *testing.T, db *postgres.DB, orders []*waitroom.Order) {
	t.Helper()
	ctx := context.Background()
	seen := map[string]string{}
	for _, o := range orders {
		got, err := db.FindOrderByID(ctx, o.ID, o.Session)
		if err != nil || got.State != waitroom.OrderPaid || len(got.Seats) != len(o.Seats) {
			t.Errorf("order %s told to %s: database has %+v, %v", o.ID, o.Session, got, err)
			continue
		}
		for _, s := range got.Seats {
			if prev, dup := seen[s.ID]; dup {
				t.Errorf("seat %s in orders %s and %s", s.ID, prev, o.ID)
			}
			seen[s.ID] = o.ID
		}
	}
	var soldWithoutOrder int
	err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM seats s LEFT JOIN orders o ON o.hold_id = s.hold_id WHERE s.state = 'SOLD' AND o.id IS NULL`).Scan(&soldWithoutOrder)
	if err != nil || soldWithoutOrder != 0 {
		t.Errorf("sold seats without an order: %d, %v", soldWithoutOrder, err)
	}
	var sold int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM seats WHERE state = 'SOLD'`).Scan(&sold); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders told, %d seats sold", len(orders), sold)
}
