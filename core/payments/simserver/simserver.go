// Package simserver is a simulated payment provider that runs as its own
// HTTP server, for tests, the development launcher and benchmarks. It serves
// a subset of Stripe's PaymentIntents API (API v1) with the same shapes:
//
//	POST /v1/payment_intents              create and confirm an intent (form or JSON: amount, currency, card, metadata)
//	GET  /v1/payment_intents/{id}         read an intent
//	GET  /v1/payment_intents?idempotency_key=K  read the intent created with key K (simulator extension)
//	POST /v1/payment_intents/{id}/cancel  cancel an intent that has not succeeded
//	POST /v1/refunds                      refund a succeeded intent (payment_intent, optional amount)
//
// POSTs are idempotent by the Idempotency-Key header: a repeat with the same
// parameters returns the same object and never charges twice, and a repeat
// with other parameters is rejected with 400 idempotency_error. Stripe has
// no lookup by idempotency key; the simulator adds one because
// payments.Provider.Status takes the key.
//
// The simulator models what makes a real provider hard to integrate with:
// settlement latency with jitter, random declines and a card that always
// declines (payments.DeclineCard), a rate limit enforced with 429 and
// Retry-After, a down switch (503 or requests that hang), and signed webhooks
// that may come late, twice, or out of order, retried with backoff when the
// receiver fails.
//
// It differs from Stripe where that keeps it small: a card number is sent
// in the "card" parameter instead of a payment method, a repeated request
// returns the object's current state instead of the first response, an
// intent carries amount_refunded, idempotency keys are scoped per endpoint
// and never expire, and all state lives in memory.
package simserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/taquilla/taquilla/shared/logkey"
)

// Config shapes the simulator. Zero values turn a behaviour off, except the
// webhook delivery limits, which take the values of DefaultConfig.
type Config struct {
	// Latency is how long an intent stays processing before it settles,
	// plus a uniform random extra of up to LatencyJitter. With both zero an
	// intent settles inside the create request.
	Latency       time.Duration
	LatencyJitter time.Duration
	// DeclineRate is the fraction of valid cards declined at random
	// (decline code insufficient_funds), from 0 to 1.
	// payments.DeclineCard always declines (generic_decline).
	DeclineRate float64

	// RateLimit caps the requests per second over all endpoints, with
	// bursts of RateBurst; excess requests get 429 with Retry-After. Zero
	// means no limit.
	RateLimit rate.Limit
	RateBurst int
	// HangWhenDown makes requests hang while the simulator is down (see
	// SetDown) instead of failing at once with 503. A hung request ends
	// when its client gives up or the server closes.
	HangWhenDown bool
	// APIKey, when set, is required as "Authorization: Bearer <key>".
	APIKey string

	// WebhookURL receives the events; empty turns webhooks off.
	WebhookURL string
	// WebhookSecret keys the HMAC of the payments.SignatureHeader.
	WebhookSecret []byte
	// WebhookDelay is the wait before an event's first delivery attempt,
	// plus a uniform random extra of up to WebhookJitter.
	WebhookDelay  time.Duration
	WebhookJitter time.Duration
	// WebhookDuplicateRate is the probability that an event is delivered
	// twice, each copy with its own delay and retries.
	WebhookDuplicateRate float64
	// WebhookLateRate is the probability that a delivery waits another
	// WebhookLateDelay, so that events created after it arrive first.
	WebhookLateRate  float64
	WebhookLateDelay time.Duration
	// WebhookMaxAttempts bounds the attempts of one delivery. After a
	// non-2xx response or an error, the next attempt waits
	// WebhookRetryBackoff, doubling up to 5 s.
	WebhookMaxAttempts  int
	WebhookRetryBackoff time.Duration
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout time.Duration
	// WebhookMaxInFlight bounds the deliveries waiting or running at once;
	// events beyond it are dropped and counted in Stats.WebhooksDropped.
	WebhookMaxInFlight int

	// Seed seeds the random choices (latency, declines, webhook faults);
	// zero picks a random seed.
	Seed uint64
}

// DefaultConfig returns settings for development. Intents settle after
// 300 ms plus up to 200 ms of jitter, 2% are declined at random, and the
// rate limit is Stripe's live-mode 100 requests/s. Once a URL is set,
// webhooks wait 50 to 250 ms, 5% are duplicated, 5% are held back 2 s, and
// a failed delivery is tried up to 5 times, backing off from 200 ms.
func DefaultConfig() Config {
	return Config{
		Latency:              300 * time.Millisecond,
		LatencyJitter:        200 * time.Millisecond,
		DeclineRate:          0.02,
		RateLimit:            100,
		RateBurst:            100,
		WebhookDelay:         50 * time.Millisecond,
		WebhookJitter:        200 * time.Millisecond,
		WebhookDuplicateRate: 0.05,
		WebhookLateRate:      0.05,
		WebhookLateDelay:     2 * time.Second,
		WebhookMaxAttempts:   5,
		WebhookRetryBackoff:  200 * time.Millisecond,
		WebhookTimeout:       5 * time.Second,
		WebhookMaxInFlight:   1000,
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"DeclineRate", c.DeclineRate}, {"WebhookDuplicateRate", c.WebhookDuplicateRate}, {"WebhookLateRate", c.WebhookLateRate}} {
		if f.v < 0 || f.v > 1 {
			errs = append(errs, fmt.Errorf("invalid %s %v: want a fraction from 0 to 1", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Latency", c.Latency}, {"LatencyJitter", c.LatencyJitter}, {"WebhookDelay", c.WebhookDelay},
		{"WebhookJitter", c.WebhookJitter}, {"WebhookLateDelay", c.WebhookLateDelay},
		{"WebhookRetryBackoff", c.WebhookRetryBackoff}, {"WebhookTimeout", c.WebhookTimeout}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %v: must not be negative", f.name, f.v))
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, fmt.Errorf("invalid RateLimit %v or RateBurst %d: must not be negative", c.RateLimit, c.RateBurst))
	}
	if c.RateLimit > 0 && c.RateLimit != rate.Inf && c.RateBurst == 0 {
		errs = append(errs, errors.New("invalid RateBurst 0: a rate limit needs a burst of at least 1"))
	}
	if u, err := url.Parse(c.WebhookURL); c.WebhookURL != "" && (err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		errs = append(errs, fmt.Errorf("invalid WebhookURL %q: want http(s)://host[:port]/path", c.WebhookURL))
	}
	if c.WebhookURL != "" && len(c.WebhookSecret) == 0 {
		errs = append(errs, errors.New("missing WebhookSecret: webhooks must be signed"))
	}
	if c.WebhookMaxAttempts < 0 || c.WebhookMaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("invalid WebhookMaxAttempts %d or WebhookMaxInFlight %d: must not be negative",
			c.WebhookMaxAttempts, c.WebhookMaxInFlight))
	}
	return errors.Join(errs...)
}

// Stats counts what the simulator did since it started.
type Stats struct {
	// Requests counts every HTTP request that reached the server,
	// including rejected ones.
	Requests    int64
	RateLimited int64
	Intents     int64
	// CapturedCents sums the amounts ever captured, refunded or not, and
	// RefundedCents the amounts refunded.
	CapturedCents int64
	RefundedCents int64
	Refunds       int64
	// WebhooksDelivered counts deliveries acknowledged with 2xx,
	// duplicates included. WebhooksFailed counts deliveries that ran out of
	// attempts, and WebhooksDropped those never tried because too many
	// were in flight.
	WebhooksDelivered int64
	WebhooksFailed    int64
	WebhooksDropped   int64
}

// Server is a running simulator. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	limiter *rate.Limiter // nil without a rate limit
	srv     *http.Server
	hooks   *http.Client
	// hookSlots holds one token per delivery in flight.
	hookSlots chan struct{}
	down      atomic.Bool

	// ctx ends at Close; it stops hung requests, pending settlements and
	// webhook deliveries.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // settlement and delivery goroutines
	closeOnce sync.Once

	requests, rateLimited                atomic.Int64
	hooksDelivered, hooksFailed, dropped atomic.Int64

	mu            sync.Mutex // guards the fields below
	closed        bool       // set by Close; no goroutine starts after it
	url           string
	rng           *rand.Rand
	intents       map[string]*intent       // by id
	byKey         map[string]*intent       // by idempotency key
	refunds       map[string]*refundRecord // by idempotency key
	capturedCents int64
	refundedCents int64
	refundCount   int64
}

// New returns a simulator that is not yet serving; call Start.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("payment simulator config: %w", err)
	}
	d := DefaultConfig()
	cfg.WebhookMaxAttempts = cmp.Or(cfg.WebhookMaxAttempts, d.WebhookMaxAttempts)
	cfg.WebhookRetryBackoff = cmp.Or(cfg.WebhookRetryBackoff, d.WebhookRetryBackoff)
	cfg.WebhookTimeout = cmp.Or(cfg.WebhookTimeout, d.WebhookTimeout)
	cfg.WebhookMaxInFlight = cmp.Or(cfg.WebhookMaxInFlight, d.WebhookMaxInFlight)
	cfg.Seed = cmp.Or(cfg.Seed, rand.Uint64())
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg,
		log: log.With(logkey.Component, "core.payments.simserver"),
		// A transport of its own, so that Close drops only the simulator's
		// connections. Each attempt has its own deadline.
		hooks:     &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		hookSlots: make(chan struct{}, cfg.WebhookMaxInFlight),
		ctx:       ctx,
		cancel:    cancel,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		intents:   map[string]*intent{},
		byKey:     map[string]*intent{},
		refunds:   map[string]*refundRecord{},
	}
	if cfg.RateLimit > 0 {
		s.limiter = rate.NewLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Start serves on ln until Close, or closes ln when Close already ran. Give
// it a loopback listener, such as net.Listen("tcp", "127.0.0.1:0").
func (s *Server) Start(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.url = "http://" + ln.Addr().String()
	s.log.Info("payment simulator listening", logkey.URL, s.url)
	started := s.goLocked(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("payment simulator stopped serving", logkey.Err, err)
		}
	})
	if !started {
		ln.Close() // Start after Close: nothing will serve it
	}
}

// URL returns the base URL, such as "http://127.0.0.1:41234", once Start
// was called.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops serving, ends hung requests, pending settlements and webhook
// deliveries, and waits for them until ctx ends. Intents still processing
// stay so. Calling Close again does nothing and returns nil.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		// A webhook receiver waits for connections that were dialed but
		// never used (net/http counts them as new, not idle, for 5 s), so
		// close them before the receiver shuts down.
		s.hooks.CloseIdleConnections()
		if serr := s.srv.Shutdown(ctx); serr != nil {
			err = fmt.Errorf("close payment simulator: %w", serr)
			s.srv.Close() // cut what is left: ctx is over
		}
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("close payment simulator: wait for background work: %w", ctx.Err()))
		}
		s.log.Info("payment simulator closed")
	})
	return err
}

// SetDown switches outage mode: while down, every request gets 503, or
// hangs when Config.HangWhenDown is set.
func (s *Server) SetDown(down bool) {
	s.down.Store(down)
}

// Totals returns the money ever captured, refunded or not, and the money
// refunded. Captured minus refunded is what the provider kept.
func (s *Server) Totals() (capturedCents, refundedCents int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.capturedCents, s.refundedCents
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Intents: int64(len(s.intents)), CapturedCents: s.capturedCents, RefundedCents: s.refundedCents, Refunds: s.refundCount}
	s.mu.Unlock()
	st.Requests = s.requests.Load()
	st.RateLimited = s.rateLimited.Load()
	st.WebhooksDelivered = s.hooksDelivered.Load()
	st.WebhooksFailed = s.hooksFailed.Load()
	st.WebhooksDropped = s.dropped.Load()
	return st
}

// goLocked runs fn on a goroutine that Close waits for, unless Close has
// started. s.mu must be held.
func (s *Server) goLocked(fn func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// jitterLocked returns base plus a uniform random extra below jitter.
// s.mu must be held.
func (s *Server) jitterLocked(base, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return base
	}
	return base + time.Duration(s.rng.Int64N(int64(jitter)))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
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
