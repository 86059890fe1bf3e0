// Package coreapp wires the core together: the queue streams and their
// followers, one admission controller per on-sale, the inventory service
// over NATS and the sweeper. The core binaries and the one-process launcher
// start it, and so do end-to-end tests.
package coreapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/admission"
	"github.com/taquilla/taquilla/core/control"
	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/natsrpc"
	"github.com/taquilla/taquilla/core/outbox"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Config configures a core.
type Config struct {
	Inventory inventory.Config
	Admission admission.Config
	// Initial holds the settings a new on-sale's queue starts with; the
	// operator changes them later through control messages.
	Initial wire.Control
	Stream  natsq.StreamOptions
	// PlacesPerFan is the number of places a fan is expected to buy. Edges
	// use it to warn fans far back that the show will likely sell out first.
	PlacesPerFan float64
	// ReplicaID names this core replica in the admission leases, so an
	// operator can see which replica admits each sale. Every replica of a
	// deployment needs its own. The default is random.
	ReplicaID string
}

// DefaultConfig returns the defaults: 500 fans admitted per minute, at most
// 5,000 shopping at once, 30 minutes per admission, and a random replica id.
func DefaultConfig() Config {
	return Config{
		Inventory: inventory.DefaultConfig(),
		Admission: admission.DefaultConfig(),
		Initial:   wire.Control{RatePerMinute: 500, Cap: 5000, ShoppingSeconds: 30 * 60},
		// NOTE: a fixed estimate; measuring places per order as the sale
		// goes would be more honest for tours where fans buy more or less.
		PlacesPerFan: 2,
		ReplicaID:    admission.NewReplicaID(),
	}
}

// Core is a running core replica.
type Core struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	db       *postgres.DB
	provider payments.Provider
	verifier *token.Verifier
	log      *slog.Logger
	// base is the logger the core was given; its parts tag themselves.
	base *slog.Logger

	Inventory *inventory.Service

	mu          sync.Mutex // guards followers, controllers, saleIDs and saleNames
	followers   map[string]*natsq.Follower
	controllers map[string]*admission.Controller
	saleIDs     []string
	saleNames   map[string]string

	rpc     *natsrpc.Server
	control *control.Server
	sweeper *inventory.Sweeper
	outbox  *outbox.Publisher
	closed  bool

	webhooks *http.Server
	// arrived remembers the sessions whose arrival this core published.
	arrived sync.Map

	// bg is the context of the core's background work; Close cancels it.
	bg     context.Context
	cancel context.CancelFunc
}

// New returns a core; Start runs it.
func New(cfg Config, nc *nats.Conn, db *postgres.DB, provider payments.Provider, verifier *token.Verifier, log *slog.Logger) (*Core, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := &Core{
		cfg: cfg, nc: nc, js: js, db: db, provider: provider, verifier: verifier,
		log:         log.With(logkey.Component, "core"),
		base:        log,
		followers:   make(map[string]*natsq.Follower),
		controllers: make(map[string]*admission.Controller),
		saleNames:   make(map[string]string),
	}
	c.Inventory = inventory.New(db, provider, cfg.Inventory, log)
	c.Inventory.OnSold = c.onSold
	c.Inventory.OnReleased = c.onReleased
	c.outbox = outbox.New(db, js, 500*time.Millisecond, log)
	return c, nil
}

// Start opens every on-sale in the database: it creates its queue stream,
// replays it, and starts its admission controller; then it serves the
// inventory and starts the sweeper. ctx bounds the startup; the background
// work runs until Close.
func (c *Core) Start(ctx context.Context) error {
	c.bg, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sales, err := c.db.FindSales(ctx)
	if err != nil {
		return err
	}
	if err := outbox.EnsureStream(ctx, c.js, c.cfg.Stream.Replicas); err != nil {
		return err
	}
	c.outbox.Start(c.bg)
	for _, s := range sales {
		if err := c.openSale(ctx, s.ID); err != nil {
			return err
		}
		c.mu.Lock()
		c.saleIDs = append(c.saleIDs, s.ID)
		c.saleNames[s.ID] = s.Name + ", " + s.StartsAt.Format("2 Jan 2006")
		c.mu.Unlock()
	}
	c.rpc = natsrpc.New(c.Inventory, c.verifier, c.SessionState, c.base)
	c.rpc.Arrive = c.arrive
	if err := c.rpc.Start(c.nc); err != nil {
		return fmt.Errorf("start inventory service: %w", err)
	}
	c.control = control.New(c, c.base)
	if err := c.control.Start(c.nc); err != nil {
		return fmt.Errorf("start control service: %w", err)
	}
	c.sweeper = c.Inventory.StartSweeper(c.bg)
	kv, err := stockBucket(ctx, c.js, c.cfg.Stream.Replicas)
	if err != nil {
		return err
	}
	go c.publishStock(c.bg, kv)
	c.log.Info("core started", logkey.Count, len(sales))
	return nil
}

func (c *Core) openSale(ctx context.Context, saleID string) error {
	stream, err := natsq.EnsureStream(ctx, c.js, saleID, c.cfg.Stream)
	if err != nil {
		return err
	}
	// The first message of a queue is its initial settings. Expecting an
	// empty stream makes this a no-op for every later start.
	init := wire.QueueMsg{Kind: wire.KindControl, Control: &c.cfg.Initial, By: "core:initial"}
	_, err = natsq.Publish(ctx, c.js, saleID, init, "init:"+saleID, jetstream.WithExpectLastSequence(0))
	if err != nil && !natsq.IsWrongLastSequence(err) {
		return err
	}

	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info of %s: %w", saleID, err)
	}
	f := natsq.NewFollower(c.js, saleID, c.cfg.Initial, c.base)
	if err := f.Start(ctx); err != nil {
		return err
	}
	// Replay what is on the stream before admitting anyone, so the
	// controller decides from the whole queue.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := f.WaitFor(wctx, info.State.LastSeq); err != nil {
		f.Close()
		return err
	}
	ctl := admission.New(c.js, f, c.availableSeats, c.cfg.Admission, c.base)
	ctl.Seed = c.seed
	ctl.Health = c.health
	// With several core replicas, only the holder of the sale's lease
	// admits. The lease bucket is replicated like the queue streams.
	leaseCfg := admission.DefaultLeaseConfig()
	leaseCfg.Replicas = c.cfg.Stream.Replicas
	lease := admission.NewLease(c.js, saleID, c.cfg.ReplicaID, leaseCfg, c.base)
	if err := lease.Start(c.bg); err != nil {
		f.Close()
		return err
	}
	ctl.Gate = lease
	ctl.Start(c.bg)

	c.mu.Lock()
	c.followers[saleID] = f
	c.controllers[saleID] = ctl
	c.mu.Unlock()
	return nil
}

// health returns the counters that drive the automatic outflow mode.
func (c *Core) health() admission.Health {
	commits, retries := c.db.TxStats()
	return admission.Health{Commits: commits, Retries: retries, CommitTime: c.db.TxTime(), HoldsExpired: c.Inventory.HoldsExpired()}
}

func (c *Core) availableSeats(ctx context.Context, saleID string) (int, error) {
	st, err := c.db.FindStock(ctx, saleID)
	return st.Available, err
}

// SessionState returns the queue state of a session, or queue.Unknown.
func (c *Core) SessionState(saleID, session string) string {
	c.mu.Lock()
	f := c.followers[saleID]
	c.mu.Unlock()
	if f == nil {
		return queue.Unknown
	}
	state := queue.Unknown
	now := time.Now()
	f.Do(func(st *queue.State) { state = st.Lookup(session, now).State })
	return state
}

// arrive records on the queue stream, once per session, that an admitted
// fan reached the store, so the arrival window does not reclaim the slot.
// A lost publish is retried on the fan's next request.
func (c *Core) arrive(saleID, session string) {
	f := c.Follower(saleID)
	if f == nil {
		return
	}
	var v queue.View
	f.Do(func(st *queue.State) { v = st.Lookup(session, time.Now()) })
	if v.State != queue.Admitted || v.Arrived {
		return
	}
	if _, loaded := c.arrived.LoadOrStore(saleID+"/"+session, true); loaded {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := wire.QueueMsg{Kind: wire.KindArrive, Session: session}
	if _, err := natsq.Publish(ctx, c.js, saleID, m, "arrive:"+session); err != nil {
		c.arrived.Delete(saleID + "/" + session)
		c.log.Warn("arrival not recorded", logkey.SessionID, session, logkey.Err, err)
	}
}

// Follower returns the queue follower of a sale, or nil.
func (c *Core) Follower(saleID string) *natsq.Follower {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.followers[saleID]
}

// onSold frees the buyer's shopping slot and nudges the stock check. It runs
// after the sale committed; a lost publish only delays the slot until the
// admission window ends.
func (c *Core) onSold(o *waitroom.Order) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := wire.QueueMsg{Kind: wire.KindDone, Session: o.Session, Reason: "purchased"}
	if _, err := natsq.Publish(ctx, c.js, o.SaleID, m, "done:"+o.Session); err != nil {
		c.log.Warn("done not published", logkey.OrderID, o.ID, logkey.Err, err)
	}
	c.outbox.Nudge()
	c.nudge(o.SaleID)
}

func (c *Core) onReleased(saleID string) {
	c.outbox.Nudge()
	c.nudge(saleID)
}

func (c *Core) nudge(saleID string) {
	c.mu.Lock()
	ctl := c.controllers[saleID]
	c.mu.Unlock()
	if ctl != nil {
		ctl.NudgeStock()
	}
}

// Close stops the core: the inventory service first, so no request starts
// mid-shutdown, then the controllers, followers and sweeper. It is safe to
// call twice.
func (c *Core) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()

	var errs []error
	if c.rpc != nil {
		errs = append(errs, c.rpc.Stop())
	}
	if c.control != nil {
		errs = append(errs, c.control.Stop())
	}
	if c.webhooks != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, c.webhooks.Shutdown(ctx))
		cancel()
	}
	if c.cancel != nil {
		c.cancel()
	}
	for _, ctl := range c.controllers {
		ctl.Close()
		// Releasing the lease lets another replica admit at once, instead
		// of after the lease's TTL.
		if lease, ok := ctl.Gate.(*admission.Lease); ok {
			errs = append(errs, lease.Close())
		}
	}
	for _, f := range c.followers {
		f.Close()
	}
	if c.sweeper != nil {
		c.sweeper.Close()
	}
	c.outbox.Close()
	return errors.Join(errs...)
}

// ServeWebhooks receives the payment provider's webhooks on ln, verified
// with secret. Close stops it.
func (c *Core) ServeWebhooks(ln net.Listener, secret []byte) {
	mux := http.NewServeMux()
	mux.Handle("/webhooks/payments", payments.WebhookHandler(secret, c.Inventory.HandleWebhook))
	c.webhooks = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := c.webhooks.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("webhook server stopped", logkey.Err, err)
		}
	}()
}

// SetControl records new settings for a sale's queue on its stream, naming
// who made the change, and waits until this core applied them.
func (c *Core) SetControl(ctx context.Context, saleID string, ctl wire.Control, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return waitroom.Errorf(waitroom.ENOTFOUND, "sale %q not found; taquilla ctl sales lists the sales", saleID)
	}
	if ctl.AutoMax < 0 || ctl.AutoMin < 0 || (ctl.AutoMax > 0 && ctl.AutoMin > ctl.AutoMax) {
		return waitroom.Errorf(waitroom.EINVALID, "the automatic rate bounds must satisfy 0 <= minimum <= maximum")
	}
	if ctl.RatePerMinute < 0 || ctl.Cap < 0 || ctl.ShoppingSeconds < 0 || (ctl.PoWDifficulty != nil && (*ctl.PoWDifficulty < 0 || *ctl.PoWDifficulty > control.MaxDifficulty)) {
		return waitroom.Errorf(waitroom.EINVALID, "rate, cap and shopping time must not be negative, and difficulty must be 0 to %d", control.MaxDifficulty)
	}
	ack, err := natsq.Publish(ctx, c.js, saleID, wire.QueueMsg{Kind: wire.KindControl, Control: &ctl, By: by}, "")
	if err != nil {
		return err
	}
	return f.WaitFor(ctx, ack.Sequence)
}
