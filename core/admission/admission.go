// Package admission is the admission controller: it admits the next fans of
// each lane at the operator's rate while the number of fans shopping stays
// under the cap, and it closes a queue when its show sells out. It acts only
// by publishing to the queue stream, so every replica applies the same result.
package admission

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// Config tunes the controller.
type Config struct {
	// Tick is how often the controller decides; admissions per tick follow
	// the rate, so a shorter tick gives smaller, smoother batches.
	Tick time.Duration
	// StockEvery is how often the remaining stock is checked.
	StockEvery time.Duration
}

// DefaultConfig returns a 250 ms tick and a stock check every second.
func DefaultConfig() Config {
	return Config{Tick: 250 * time.Millisecond, StockEvery: time.Second}
}

// Gate says whether this replica may act for a sale now. With several core
// replicas, a lease held by one of them at a time is the gate; a nil Gate
// always lets the controller act.
type Gate interface {
	Held() bool
}

// StockFunc returns the number of places of a sale still available.
type StockFunc func(ctx context.Context, saleID string) (available int, err error)

// Controller admits fans of one on-sale.
type Controller struct {
	js    jetstream.JetStream
	f     *natsq.Follower
	stock StockFunc
	cfg   Config
	log   *slog.Logger
	now   func() time.Time

	// Gate, if set before Start, must be held for the controller to admit
	// or change the queue; set it when more than one replica runs.
	Gate Gate

	// bucket holds admissions earned but not yet spent: a leaky bucket
	// filled at the rate and capped at one second's worth, so capacity that
	// piled up while nobody waited is not spent in one burst.
	bucket float64
	last   time.Time

	nudge  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a controller for the sale that f follows.
func New(js jetstream.JetStream, f *natsq.Follower, stock StockFunc, cfg Config, log *slog.Logger) *Controller {
	return &Controller{
		js: js, f: f, stock: stock, cfg: cfg, now: time.Now,
		log:   log.With(logkey.Component, "core.admission", logkey.SaleID, f.SaleID()),
		nudge: make(chan struct{}, 1),
	}
}

// Start runs the controller until ctx ends or Close is called.
func (c *Controller) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go c.run(ctx)
}

// Close stops the controller and waits for it.
func (c *Controller) Close() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
}

// NudgeStock asks for a stock check soon, after seats were sold or released.
func (c *Controller) NudgeStock() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

func (c *Controller) run(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	stock := time.NewTicker(c.cfg.StockEvery)
	defer stock.Stop()
	c.last = c.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.admit(ctx)
		case <-stock.C:
			c.checkStock(ctx)
		case <-c.nudge:
			c.checkStock(ctx)
		}
	}
}

type snapshot struct {
	control      wire.Control
	closed       string
	shopping     int
	recent       int
	lastBatch    uint64
	lastAdmitSeq uint64
	lanes        []string
	waiting      map[string]int
}

func (c *Controller) snapshot(now time.Time) snapshot {
	var s snapshot
	c.f.Do(func(st *queue.State) {
		s.control = st.Control()
		s.closed = st.ClosedReason()
		s.shopping = st.Shopping(now)
		s.recent = st.AdmittedSince(now.Add(-time.Minute))
		s.lastBatch = st.LastBatch()
		s.lastAdmitSeq = st.LastAdmitSeq()
		s.lanes = st.Lanes()
		s.waiting = make(map[string]int, len(s.lanes))
		for _, l := range s.lanes {
			s.waiting[l] = st.WaitingIn(l)
		}
	})
	sort.Strings(s.lanes)
	return s
}

// Room returns how many fans may be admitted now, given the settings and
// what the queue shows: the bucket, the rate over the last minute, the cap
// on fans shopping and the number waiting.
func Room(bucket float64, control wire.Control, recent, shopping, waiting int) int {
	n := int(math.Floor(bucket))
	n = min(n, control.RatePerMinute-recent, control.Cap-shopping, waiting)
	return max(n, 0)
}

// admit runs one decision: top up the bucket, compute the room, and publish
// admit messages for the lanes in name order.
func (c *Controller) admit(ctx context.Context) {
	now := c.now()
	dt := now.Sub(c.last).Seconds()
	c.last = now
	if c.Gate != nil && !c.Gate.Held() {
		c.bucket = 0
		return
	}
	s := c.snapshot(now)
	if s.control.Paused || s.closed != "" || s.control.RatePerMinute <= 0 {
		c.bucket = 0
		return
	}
	perSec := float64(s.control.RatePerMinute) / 60
	c.bucket = min(c.bucket+perSec*dt, max(perSec, 1))

	total := 0
	for _, l := range s.lanes {
		total += s.waiting[l]
	}
	room := Room(c.bucket, s.control, s.recent, s.shopping, total)
	batch, expect := s.lastBatch, s.lastAdmitSeq
	for _, l := range s.lanes {
		n := min(room, s.waiting[l])
		if n <= 0 {
			continue
		}
		batch++
		m := wire.QueueMsg{Kind: wire.KindAdmit, Lane: l, Count: n, Batch: batch}
		ack, err := natsq.Publish(ctx, c.js, c.f.SaleID(), m, "", jetstream.WithExpectLastSequencePerSubject(expect))
		if natsq.IsWrongLastSequence(err) {
			c.log.Debug("admit lost to another controller", logkey.Count, n)
			return
		}
		if err != nil {
			c.log.Warn("admit failed", logkey.Count, n, logkey.Err, err)
			return
		}
		expect = ack.Sequence
		room -= n
		c.bucket -= float64(n)
		// Wait until the batch is applied, so the next decision counts it.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.f.WaitFor(wctx, ack.Sequence)
		cancel()
		if err != nil {
			c.log.Warn("admit not applied in time", logkey.Seq, ack.Sequence, logkey.Err, err)
			return
		}
	}
}

// checkStock closes the queue when nothing is left to buy and reopens it
// when places come back.
func (c *Controller) checkStock(ctx context.Context) {
	if c.stock == nil || (c.Gate != nil && !c.Gate.Held()) {
		return
	}
	available, err := c.stock(ctx, c.f.SaleID())
	if err != nil {
		c.log.Warn("stock check failed", logkey.Err, err)
		return
	}
	var closed string
	c.f.Do(func(st *queue.State) { closed = st.ClosedReason() })
	var m wire.QueueMsg
	switch {
	case available == 0 && closed == "":
		m = wire.QueueMsg{Kind: wire.KindClose, Reason: "sold_out", By: "core"}
	case available > 0 && closed == "sold_out":
		m = wire.QueueMsg{Kind: wire.KindReopen, By: "core"}
	default:
		return
	}
	ack, err := natsq.Publish(ctx, c.js, c.f.SaleID(), m, "")
	if err != nil {
		c.log.Warn("queue state change failed", logkey.Reason, m.Kind, logkey.Err, err)
		return
	}
	c.log.Info("queue state changed", logkey.Reason, m.Kind, logkey.Count, available)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = c.f.WaitFor(wctx, ack.Sequence)
}
