package payments

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// DeclineCard is the test card number that the simulated provider always
// declines; every other number is approved unless the random decline rate
// says otherwise.
const DeclineCard = "4000000000000002"

// SimConfig shapes the simulated provider.
type SimConfig struct {
	// Latency is how long a charge takes once it reaches the provider.
	Latency time.Duration
	// ArrivalDelay is how long a charge travels before the provider knows
	// of it; Status reports StatusNone meanwhile. It models the window in
	// which a charge is in flight but invisible.
	ArrivalDelay time.Duration
	// DeclineRate is the fraction of approved-looking charges declined at
	// random, 0 to 1.
	DeclineRate float64
}

// Sim is an in-process simulated payment provider.
type Sim struct {
	cfg SimConfig

	mu      sync.Mutex // guards charges and refunds
	charges map[string]*simCharge
	refunds int
}

type simCharge struct {
	res  Result
	done chan struct{}
	// amount is kept so tests can check that money and seats agree.
	amount int64
}

var _ Provider = (*Sim)(nil)

// NewSim returns a simulated provider.
func NewSim(cfg SimConfig) *Sim {
	return &Sim{cfg: cfg, charges: make(map[string]*simCharge)}
}

// Charge implements Provider.
func (s *Sim) Charge(ctx context.Context, key string, amountCents int64, card string) (Result, error) {
	if err := wait(ctx, s.cfg.ArrivalDelay); err != nil {
		return Result{}, fmt.Errorf("charge %s: %w", key, ErrUnavailable)
	}

	s.mu.Lock()
	c, ok := s.charges[key]
	if !ok {
		c = &simCharge{res: Result{Status: StatusProcessing, Ref: "ch_" + key}, done: make(chan struct{}), amount: amountCents}
		s.charges[key] = c
		go s.settle(c, card)
	}
	s.mu.Unlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("charge %s: %w", key, ErrUnavailable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.res, nil
}

func (s *Sim) settle(c *simCharge, card string) {
	time.Sleep(s.cfg.Latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	card = strings.ReplaceAll(card, " ", "")
	if card == DeclineCard || rand.Float64() < s.cfg.DeclineRate {
		c.res.Status, c.res.DeclineCode = StatusDeclined, "card_declined"
	} else {
		c.res.Status = StatusCaptured
	}
	close(c.done)
}

// Status implements Provider.
func (s *Sim) Status(ctx context.Context, key string) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[key]
	if !ok {
		return Result{Status: StatusNone}, nil
	}
	return c.res, nil
}

// Refund implements Provider.
func (s *Sim) Refund(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.charges[key]
	if !ok {
		return fmt.Errorf("refund %s: no such charge", key)
	}
	switch c.res.Status {
	case StatusRefunded:
		return nil
	case StatusCaptured:
		c.res.Status = StatusRefunded
		s.refunds++
		return nil
	}
	return fmt.Errorf("refund %s: charge is %s", key, c.res.Status)
}

// Totals returns the money captured and not refunded, and the number of
// refunds made.
func (s *Sim) Totals() (capturedCents int64, refunds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.charges {
		if c.res.Status == StatusCaptured {
			capturedCents += c.amount
		}
	}
	return capturedCents, s.refunds
}

func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
