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
	// Auto tunes the automatic outflow mode.
	Auto AutoConfig
}

// DefaultConfig returns a 250 ms tick and a stock check every second.
func DefaultConfig() Config {
	return Config{Tick: 250 * time.Millisecond, StockEvery: time.Second, Auto: DefaultAutoConfig()}
}

// Gate reports whether this replica may act for a sale now. With several
// core replicas, the gate is a lease that one of them holds at a time. A
// nil Gate always lets the controller act.
type Gate interface {
	Held() bool
}

// StockFunc returns the number of places of a sale still available.
type StockFunc func(ctx context.Context, saleID string) (available int, err error)

// SeedFunc returns the hex seed behind a commitment that this core
// published when it scheduled the sale's opening.
type SeedFunc func(ctx context.Context, saleID, commitment string) (seed string, err error)

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
	// Seed, if set before Start, lets the controller open a scheduled sale
	// when its time comes.
	Seed SeedFunc
	// Health, if set before Start, feeds the automatic outflow mode.
	Health HealthFunc
	auto   *Autopilot

	// soldOut is true while the last stock check found nothing left, so
	// no fan is admitted between the last sale and the queue's close.
	soldOut bool

	plan Planner

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
	autoEvery := c.cfg.Auto.Every
	if autoEvery <= 0 {
		autoEvery = DefaultAutoConfig().Every
	}
	auto := time.NewTicker(autoEvery)
	defer auto.Stop()
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
		case <-auto.C:
			c.steer(ctx)
		}
	}
}

// Room returns how many fans may be admitted now, given the settings and
// what the queue shows: the bucket, the rate over the last minute, the cap
// on fans shopping and the number waiting.
func Room(bucket float64, control wire.Control, recent, shopping, waiting int) int {
	n := int(math.Floor(bucket))
	n = min(n, control.RatePerMinute-recent, control.Cap-shopping, waiting)
	return max(n, 0)
}

// Split divides room admissions among the lanes with fans waiting, by
// their shares: credit carries each lane's fraction over to the next
// decision, and the share of a lane without enough fans goes to the
// others. lanes gives the order in which lanes are served.
func Split(room int, lanes []string, waiting, shares map[string]int, credit map[string]float64) map[string]int {
	alloc := make(map[string]int)
	var active []string
	total := 0
	for _, l := range lanes {
		if waiting[l] > 0 {
			active = append(active, l)
			total += shares[l]
		}
	}
	for l := range credit {
		if waiting[l] <= 0 {
			delete(credit, l) // an idle lane banks nothing
		}
	}
	if room <= 0 || len(active) == 0 {
		return alloc
	}
	for _, l := range active {
		w, sum := float64(shares[l]), float64(total)
		if total == 0 {
			w, sum = 1, float64(len(active))
		}
		credit[l] += float64(room) * w / sum
	}
	given := 0
	for _, l := range active {
		n := min(int(math.Floor(credit[l]+1e-9)), waiting[l], room-given)
		if n > 0 {
			alloc[l] = n
			credit[l] -= float64(n)
			given += n
		}
	}
	// What rounding or short lanes left goes to the lanes with fans and the
	// most credit.
	for given < room {
		best := ""
		for _, l := range active {
			if waiting[l] > alloc[l] && (best == "" || credit[l] > credit[best]) {
				best = l
			}
		}
		if best == "" {
			break
		}
		alloc[best]++
		credit[best]--
		given++
	}
	for _, l := range active {
		credit[l] = max(min(credit[l], 1), -1)
	}
	return alloc
}

// Planner makes the controller's decisions from a queue state and a clock;
// it does no I/O, so tests run it over simulated time. A new replica
// starts with an empty planner: a failover loses only unspent bucket
// credit, never an admission.
type Planner struct {
	// bucket holds admissions earned but not yet spent: a leaky bucket
	// filled at the rate and capped at one second's worth, so capacity that
	// piled up while nobody waited is not spent in one burst.
	bucket float64
	last   time.Time
	// credit is each lane's share of admissions earned but not yet given,
	// so small batches still follow the shares over time.
	credit map[string]float64
}

// Decision is the set of messages that one planning step publishes.
type Decision struct {
	// Open is the commitment of a scheduled opening that is due.
	Open string
	// Admits are admit messages, one per lane, numbered after LastBatch;
	// the first expects LastAdmitSeq as the admit subject's last sequence.
	Admits       []wire.QueueMsg
	LastAdmitSeq uint64
}

// Plan decides at now from st. soldOut stops admissions while the last
// stock check found nothing left.
func (p *Planner) Plan(now time.Time, st *queue.State, soldOut bool) Decision {
	if p.credit == nil {
		p.credit = make(map[string]float64)
	}
	dt := 0.0
	if !p.last.IsZero() {
		dt = now.Sub(p.last).Seconds()
	}
	p.last = now
	var d Decision
	if opensAt, commitment, ok := st.Scheduled(); ok {
		p.bucket = 0
		if !now.Before(opensAt) {
			d.Open = commitment
		}
		return d
	}
	control := st.Control()
	if control.Paused || st.ClosedReason() != "" || control.RatePerMinute <= 0 || soldOut {
		p.bucket = 0
		return d
	}
	perSec := float64(control.RatePerMinute) / 60
	p.bucket = min(p.bucket+perSec*dt, max(perSec, 1))

	lanes := st.Lanes()
	sort.Strings(lanes)
	waiting := make(map[string]int, len(lanes))
	total := 0
	for _, l := range lanes {
		waiting[l] = st.WaitingIn(l)
		total += waiting[l]
	}
	room := Room(p.bucket, control, st.AdmittedSince(now.Add(-time.Minute)), st.Shopping(now), total)
	alloc := Split(room, lanes, waiting, st.Shares(), p.credit)
	batch := st.LastBatch()
	d.LastAdmitSeq = st.LastAdmitSeq()
	for _, l := range lanes {
		if alloc[l] <= 0 {
			continue
		}
		// A lane's share goes out in messages of at most MaxAdmitSessions
		// fans, so each stays under the stream's message size limit.
		sessions := st.NextWaiting(l, alloc[l])
		for len(sessions) > 0 {
			chunk := sessions[:min(len(sessions), wire.MaxAdmitSessions)]
			sessions = sessions[len(chunk):]
			batch++
			d.Admits = append(d.Admits, wire.QueueMsg{Kind: wire.KindAdmit, Lane: l, Count: len(chunk), Sessions: chunk, Batch: batch})
			p.bucket -= float64(len(chunk))
		}
	}
	return d
}

// admit runs one decision and publishes it: the opening of a scheduled
// sale whose time came, or one admit message per lane listing the fans it
// admits.
func (c *Controller) admit(ctx context.Context) {
	now := c.now()
	if c.Gate != nil && !c.Gate.Held() {
		c.plan = Planner{}
		return
	}
	var d Decision
	c.f.Do(func(st *queue.State) { d = c.plan.Plan(now, st, c.soldOut) })
	if d.Open != "" {
		c.open(ctx, d.Open)
		return
	}
	expect := d.LastAdmitSeq
	for _, m := range d.Admits {
		ack, err := natsq.Publish(ctx, c.js, c.f.SaleID(), m, "", jetstream.WithExpectLastSequencePerSubject(expect))
		if natsq.IsWrongLastSequence(err) {
			c.log.Debug("admit lost to another controller", logkey.Count, m.Count)
			return
		}
		if err != nil {
			c.log.Warn("admit failed", logkey.Count, m.Count, logkey.Err, err)
			return
		}
		expect = ack.Sequence
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

// open reveals the seed of a scheduled sale whose opening time came. The
// message id makes a second open of the same round a no-op, so two
// replicas opening at once place the pre-queue once.
func (c *Controller) open(ctx context.Context, commitment string) {
	if c.Seed == nil {
		return
	}
	seed, err := c.Seed(ctx, c.f.SaleID(), commitment)
	if err != nil {
		c.log.Warn("seed of scheduled opening not found", logkey.Err, err)
		return
	}
	if err := Open(ctx, c.js, c.f, commitment, seed, "core:schedule"); err != nil {
		c.log.Warn("opening failed", logkey.Err, err)
		return
	}
	c.log.Info("sale opened")
}

// Open publishes the opening of a scheduled sale with its seed and waits
// until f applied it.
func Open(ctx context.Context, js jetstream.JetStream, f *natsq.Follower, commitment, seed, by string) error {
	m := wire.QueueMsg{Kind: wire.KindOpen, Seed: seed, Commitment: commitment, By: by}
	ack, err := natsq.Publish(ctx, js, f.SaleID(), m, "open:"+commitment)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return f.WaitFor(wctx, ack.Sequence)
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
	c.soldOut = available == 0
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
