package payments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/taquilla/taquilla/shared/logkey"
)

// ErrCircuitOpen means the client did not call the provider because its
// circuit breaker is open (or half-open and already probing). Errors that
// wrap it also wrap ErrUnavailable.
var ErrCircuitOpen = errors.New("payment provider circuit breaker is open")

// HTTPConfig configures the HTTP provider client. A zero field takes the
// value of DefaultHTTPConfig.
type HTTPConfig struct {
	// BaseURL is the provider's API root, such as "http://127.0.0.1:8090".
	BaseURL string
	// APIKey is sent as a bearer token when set.
	APIKey string
	// Currency is the ISO 4217 code, in lowercase, of every charge.
	Currency string
	// RequestTimeout bounds one HTTP request, inside the caller's deadline.
	RequestTimeout time.Duration
	// PollInterval is the wait before the first status poll of an intent
	// still processing; each later wait doubles up to PollMaxInterval.
	PollInterval    time.Duration
	PollMaxInterval time.Duration

	// RateLimit caps the requests per second this client sends, polls
	// included, and RateBurst is the bucket size. Keep RateLimit under the
	// provider's limit divided by the number of core replicas. Use
	// rate.Inf to turn the limiter off.
	RateLimit rate.Limit
	RateBurst int
	// MaxRateLimitRetries is how many times one request is repeated after a
	// 429, each after the response's Retry-After.
	MaxRateLimitRetries int
	// MaxRetryAfter caps the wait a Retry-After may ask for.
	MaxRetryAfter time.Duration

	// BreakerFailures is the number of consecutive failed requests (5xx,
	// 429, timeouts, connection errors) that opens the circuit breaker.
	BreakerFailures uint32
	// BreakerCooldown is how long the breaker stays open before it lets
	// probe requests through (half-open).
	BreakerCooldown time.Duration
	// BreakerProbes is how many requests a half-open breaker lets through;
	// that many successes in a row close it, and one failure opens it
	// again.
	BreakerProbes uint32

	// Client sends the requests; nil means a client of its own with
	// keep-alive connections.
	Client *http.Client
}

// DefaultHTTPConfig returns the defaults. A request times out after 5 s,
// and polls start after 50 ms and double up to 1 s. The limiter allows 80
// requests/s in bursts of 10, under the 100/s that Stripe allows in live
// mode and that simserver.DefaultConfig enforces. A 429 is retried three
// times, each after at most 10 s. The breaker opens after 5 consecutive
// failures, cools down for 10 s, and closes after 1 successful probe.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		Currency:            "eur",
		RequestTimeout:      5 * time.Second,
		PollInterval:        50 * time.Millisecond,
		PollMaxInterval:     time.Second,
		RateLimit:           80,
		RateBurst:           10,
		MaxRateLimitRetries: 3,
		MaxRetryAfter:       10 * time.Second,
		BreakerFailures:     5,
		BreakerCooldown:     10 * time.Second,
		BreakerProbes:       1,
	}
}

// withDefaults fills zero fields from DefaultHTTPConfig.
func (c HTTPConfig) withDefaults() HTTPConfig {
	d := DefaultHTTPConfig()
	c.Currency = cmp.Or(c.Currency, d.Currency)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, d.RequestTimeout)
	c.PollInterval = cmp.Or(c.PollInterval, d.PollInterval)
	c.PollMaxInterval = cmp.Or(c.PollMaxInterval, d.PollMaxInterval)

	c.RateLimit = cmp.Or(c.RateLimit, d.RateLimit)
	c.RateBurst = cmp.Or(c.RateBurst, d.RateBurst)
	c.MaxRateLimitRetries = cmp.Or(c.MaxRateLimitRetries, d.MaxRateLimitRetries)
	c.MaxRetryAfter = cmp.Or(c.MaxRetryAfter, d.MaxRetryAfter)

	c.BreakerFailures = cmp.Or(c.BreakerFailures, d.BreakerFailures)
	c.BreakerCooldown = cmp.Or(c.BreakerCooldown, d.BreakerCooldown)
	c.BreakerProbes = cmp.Or(c.BreakerProbes, d.BreakerProbes)
	return c
}

// Validate reports every invalid field.
func (c HTTPConfig) Validate() error {
	var errs []error
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("invalid BaseURL %q: %w", c.BaseURL, err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("invalid BaseURL %q: want http(s)://host[:port]", c.BaseURL))
	}
	if len(c.Currency) != 3 || strings.ToLower(c.Currency) != c.Currency {
		errs = append(errs, fmt.Errorf("invalid Currency %q: want a lowercase ISO 4217 code such as eur", c.Currency))
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"RequestTimeout", c.RequestTimeout}, {"PollInterval", c.PollInterval}, {"PollMaxInterval", c.PollMaxInterval},
		{"MaxRetryAfter", c.MaxRetryAfter}, {"BreakerCooldown", c.BreakerCooldown}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("invalid %s %v: must not be negative", f.name, f.v))
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 || c.MaxRateLimitRetries < 0 {
		errs = append(errs, fmt.Errorf("invalid RateLimit %v, RateBurst %d or MaxRateLimitRetries %d: must not be negative",
			c.RateLimit, c.RateBurst, c.MaxRateLimitRetries))
	}
	return errors.Join(errs...)
}

// HTTP is a Provider that speaks to a Stripe-like HTTP API, such as the
// simulator in simserver. Every request waits for the client-side rate
// limiter and passes the circuit breaker. It is safe for concurrent use.
type HTTP struct {
	cfg     HTTPConfig
	base    string
	client  *http.Client
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[struct{}]
	log     *slog.Logger
}

var _ Provider = (*HTTP)(nil)

// NewHTTP returns a client for the provider at cfg.BaseURL.
func NewHTTP(cfg HTTPConfig, log *slog.Logger) (*HTTP, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("payments http config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &HTTP{
		cfg:     cfg,
		base:    strings.TrimSuffix(cfg.BaseURL, "/"),
		client:  cfg.Client,
		limiter: rate.NewLimiter(cfg.RateLimit, cfg.RateBurst),
		log:     log.With(logkey.Component, "core.payments.http"),
	}
	if h.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// The default of 2 idle connections per host would make most
		// concurrent charges open a new connection.
		tr.MaxIdleConnsPerHost = 64
		h.client = &http.Client{Transport: tr}
	}
	h.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "payments",
		MaxRequests: cfg.BreakerProbes,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= cfg.BreakerFailures
		},
		IsSuccessful:  isSuccessful,
		IsExcluded:    isExcluded,
		OnStateChange: h.logStateChange,
	})
	return h, nil
}

func (h *HTTP) logStateChange(_ string, from, to gobreaker.State) {
	switch to {
	case gobreaker.StateOpen:
		h.log.Warn("payment provider circuit breaker opened", logkey.Detail, from.String()+" to open")
	case gobreaker.StateHalfOpen:
		h.log.Info("payment provider circuit breaker half-open")
	case gobreaker.StateClosed:
		h.log.Info("payment provider circuit breaker closed")
	}
}

// CloseIdleConnections closes the client's idle keep-alive connections to
// the provider, so that a server shutting down need not wait for them.
func (h *HTTP) CloseIdleConnections() {
	h.client.CloseIdleConnections()
}

// BreakerState returns the circuit breaker's state: "closed", "half-open"
// or "open".
func (h *HTTP) BreakerState() string {
	return h.breaker.State().String()
}

// Charge creates and confirms a payment intent with key as its idempotency
// key, then polls it until it leaves processing. A repeat with the same key
// returns the same intent and never charges twice. It returns an error
// wrapping ErrUnavailable when the outcome is unknown: the provider did not
// respond, the circuit breaker is open, or ctx ended while the intent was
// processing. Status reports the outcome later.
func (h *HTTP) Charge(ctx context.Context, key string, amountCents int64, card string) (Result, error) {
	form := url.Values{
		"amount":                              {strconv.FormatInt(amountCents, 10)},
		"currency":                            {h.cfg.Currency},
		"card":                                {card},
		"metadata[" + MetadataPaymentID + "]": {key},
	}
	var pi PaymentIntent
	err := h.call(ctx, http.MethodPost, "/v1/payment_intents", form, key, &pi)
	if declined, ok := declinedIntent(err); ok {
		return resultOf(declined), nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("charge %s: %w", key, err)
	}

	wait := h.cfg.PollInterval
	for pi.Status == IntentProcessing {
		if err := sleep(ctx, wait); err != nil {
			return Result{}, fmt.Errorf("charge %s: intent %s still processing: %w: %w", key, pi.ID, ErrUnavailable, err)
		}
		wait = min(2*wait, h.cfg.PollMaxInterval)
		if err := h.call(ctx, http.MethodGet, "/v1/payment_intents/"+url.PathEscape(pi.ID), nil, "", &pi); err != nil {
			return Result{}, fmt.Errorf("charge %s: poll intent: %w", key, err)
		}
	}
	return resultOf(&pi), nil
}

// declinedIntent returns the intent of a 402 card_error, the response to a
// create whose card was declined at once.
func declinedIntent(err error) (*PaymentIntent, bool) {
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusPaymentRequired || apiErr.PaymentIntent == nil {
		return nil, false
	}
	return apiErr.PaymentIntent, true
}

// Status looks the intent up by its idempotency key (a simulator extension:
// Stripe has no such lookup). It returns StatusNone when the provider
// stores no intent for key.
//
// NOTE: StatusNone is true at the moment of the lookup only. A Charge
// request that was sent but not yet read by the provider can still create
// the intent. That window ends at most one RequestTimeout after the Charge
// sent its request.
func (h *HTTP) Status(ctx context.Context, key string) (Result, error) {
	pi, err := h.lookup(ctx, key)
	if err != nil {
		return Result{}, fmt.Errorf("payment status %s: %w", key, err)
	}
	if pi == nil {
		return Result{Status: StatusNone}, nil
	}
	return resultOf(pi), nil
}

func (h *HTTP) lookup(ctx context.Context, key string) (*PaymentIntent, error) {
	var pi PaymentIntent
	err := h.call(ctx, http.MethodGet, "/v1/payment_intents?idempotency_key="+url.QueryEscape(key), nil, "", &pi)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &pi, nil
}

// Refund refunds the whole amount of the intent charged with key, with
// "refund-"+key as the refund's idempotency key. An intent already refunded
// counts as success. It returns an error when the provider holds no intent
// for key, when the intent is still processing, and when it took no money.
func (h *HTTP) Refund(ctx context.Context, key string) error {
	pi, err := h.lookup(ctx, key)
	if err != nil {
		return fmt.Errorf("refund %s: %w", key, err)
	}
	if pi == nil {
		return fmt.Errorf("refund %s: payment not found at the provider", key)
	}
	switch res := resultOf(pi); res.Status {
	case StatusRefunded:
		return nil
	case StatusProcessing:
		return fmt.Errorf("refund %s: intent %s still processing; retry later: %w", key, pi.ID, ErrUnavailable)
	case StatusDeclined:
		return fmt.Errorf("refund %s: intent %s is %s and took no money", key, pi.ID, pi.Status)
	}

	var re Refund
	err = h.call(ctx, http.MethodPost, "/v1/refunds", url.Values{"payment_intent": {pi.ID}}, "refund-"+key, &re)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Code == "charge_already_refunded" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("refund %s: %w", key, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
