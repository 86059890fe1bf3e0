package admission

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// Health is a snapshot of the core's cumulative counters, read by the
// automatic outflow mode.
type Health struct {
	// Commits counts committed store transactions, Retries their reruns
	// after serialization failures, and CommitTime the time they took,
	// retries included.
	Commits    int64
	Retries    int64
	CommitTime time.Duration
	// HoldsExpired counts carts whose time ran out before checkout.
	HoldsExpired int64
}

// HealthFunc returns the core's current counters.
type HealthFunc func() Health

// AutoConfig sets when the automatic mode counts the core as overloaded.
type AutoConfig struct {
	// Every is how often the rate is reconsidered.
	Every time.Duration
	// MaxLatency is the highest mean transaction time that counts as
	// healthy.
	MaxLatency time.Duration
	// MaxRetries is the highest number of reruns per committed
	// transaction that counts as healthy.
	MaxRetries float64
	// MaxExpiries is the highest number of expired carts per committed
	// transaction that counts as healthy: many carts running out means
	// fans cannot finish in time.
	MaxExpiries float64
}

// DefaultAutoConfig returns a 5 s step, 200 ms mean latency, 0.2 reruns
// and 0.5 expired carts per transaction.
func DefaultAutoConfig() AutoConfig {
	return AutoConfig{Every: 5 * time.Second, MaxLatency: 200 * time.Millisecond, MaxRetries: 0.2, MaxExpiries: 0.5}
}

// Autopilot drives the admission rate from the core's health the way
// congestion control drives a window: it adds a tenth while the core is
// healthy and cuts by 30% when it is not, always within the operator's
// bounds. The cap on fans shopping applies on top, unchanged.
type Autopilot struct {
	cfg  AutoConfig
	last Health
	seen bool
}

// NewAutopilot returns an Autopilot.
func NewAutopilot(cfg AutoConfig) *Autopilot { return &Autopilot{cfg: cfg} }

// Next returns the rate for the next step from the current rate, the
// bounds and the counters now, and why. waiting reports whether fans wait: a
// healthy core raises the rate only then, since an idle queue says nothing
// about how much more the core can take.
func (a *Autopilot) Next(rate, lo, hi int, h Health, waiting bool) (next int, reason string) {
	prev := a.last
	first := !a.seen
	a.last, a.seen = h, true
	if first {
		return clamp(rate, lo, hi), "start"
	}
	commits := h.Commits - prev.Commits
	if commits > 0 {
		latency := (h.CommitTime - prev.CommitTime) / time.Duration(commits)
		retries := float64(h.Retries-prev.Retries) / float64(commits)
		expiries := float64(h.HoldsExpired-prev.HoldsExpired) / float64(commits)
		switch {
		case latency > a.cfg.MaxLatency:
			return clamp(rate*7/10, lo, hi), "slow transactions"
		case retries > a.cfg.MaxRetries:
			return clamp(rate*7/10, lo, hi), "serialization retries"
		case expiries > a.cfg.MaxExpiries:
			return clamp(rate*7/10, lo, hi), "carts expiring"
		}
	}
	if !waiting {
		return clamp(rate, lo, hi), "idle"
	}
	return clamp(rate+max(rate/10, 10), lo, hi), "healthy"
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }

// steer runs one step of the automatic mode when the sale has it on, and
// records a new rate on the stream.
func (c *Controller) steer(ctx context.Context) {
	if c.Health == nil || (c.Gate != nil && !c.Gate.Held()) {
		return
	}
	var ctl wire.Control
	var ctlSeq uint64
	waiting := false
	c.f.Do(func(st *queue.State) {
		ctl, ctlSeq = st.Control(), st.LastControlSeq()
		for _, l := range st.Lanes() {
			waiting = waiting || st.WaitingIn(l) > 0
		}
	})
	if ctl.AutoMax <= 0 {
		c.auto = nil
		return
	}
	if c.auto == nil {
		c.auto = NewAutopilot(c.cfg.Auto)
	}
	next, reason := c.auto.Next(ctl.RatePerMinute, ctl.AutoMin, ctl.AutoMax, c.Health(), waiting)
	if next == ctl.RatePerMinute {
		return
	}
	prev := ctl.RatePerMinute
	ctl.RatePerMinute = next
	m := wire.QueueMsg{Kind: wire.KindControl, Control: &ctl, By: "core:auto", Reason: reason}
	// The change is based on the settings read above. If an operator
	// changed them meanwhile, the publish fails and the operator's change
	// is kept.
	ack, err := natsq.Publish(ctx, c.js, c.f.SaleID(), m, "", jetstream.WithExpectLastSequencePerSubject(ctlSeq))
	if natsq.IsWrongLastSequence(err) {
		c.log.Info("automatic rate change skipped: the settings changed meanwhile")
		return
	}
	if err != nil {
		c.log.Warn("automatic rate not recorded", logkey.Err, err)
		return
	}
	c.log.Info("automatic rate changed", logkey.Value, next, logkey.Previous, prev, logkey.Reason, reason)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = c.f.WaitFor(wctx, ack.Sequence)
}
