package payments_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
)

func TestHTTP_Charge(t *testing.T) {
	t.Run("ok", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, payments.HTTPConfig{})
		res, err := h.Charge(t.Context(), "pay-1", 4500, testCard)
		if err != nil {
			t.Fatalf("Charge: %v", err)
		}
		if res.Status != payments.StatusCaptured || !strings.HasPrefix(res.Ref, "pi_") {
			t.Errorf("Charge = %+v, want captured with a pi_ ref", res)
		}
		if captured, _ := sim.Totals(); captured != 4500 {
			t.Errorf("captured = %d cents, want 4500", captured)
		}
	})

	t.Run("same_key_charges_once", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{Latency: 50 * time.Millisecond})
		h := mustClient(t, sim, payments.HTTPConfig{})
		var wg sync.WaitGroup
		refs := make([]string, 8)
		for i := range refs {
			wg.Go(func() {
				res, err := h.Charge(t.Context(), "pay-same", 9900, testCard)
				if err != nil {
					t.Errorf("Charge %d: %v", i, err)
					return
				}
				refs[i] = res.Ref
			})
		}
		wg.Wait()
		for i, ref := range refs {
			if ref != refs[0] {
				t.Errorf("Charge %d returned intent %s, want %s like the first", i, ref, refs[0])
			}
		}
		if captured, _ := sim.Totals(); captured != 9900 {
			t.Errorf("captured = %d cents, want 9900 once", captured)
		}
		if n := sim.Stats().Intents; n != 1 {
			t.Errorf("intents = %d, want 1", n)
		}
	})

	t.Run("declines", func(t *testing.T) {
		tests := []struct {
			name        string
			cfg         simserver.Config
			card        string
			declineCode string
		}{
			{"decline_card", simserver.Config{}, payments.DeclineCard, "generic_decline"},
			{"decline_card_with_spaces", simserver.Config{}, "4000 0000 0000 0002", "generic_decline"},
			{"decline_card_after_latency", simserver.Config{Latency: 20 * time.Millisecond}, payments.DeclineCard, "generic_decline"},
			{"bad_checksum", simserver.Config{}, "4242424242424241", "incorrect_number"},
			{"decline_rate", simserver.Config{DeclineRate: 1}, testCard, "insufficient_funds"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sim := mustSim(t, tt.cfg)
				h := mustClient(t, sim, payments.HTTPConfig{})
				res, err := h.Charge(t.Context(), "pay-d", 4500, tt.card)
				if err != nil {
					t.Fatalf("Charge: %v", err)
				}
				if res.Status != payments.StatusDeclined || res.DeclineCode != tt.declineCode {
					t.Errorf("Charge = %+v, want declined with %s", res, tt.declineCode)
				}
				if captured, _ := sim.Totals(); captured != 0 {
					t.Errorf("captured = %d cents after a decline, want 0", captured)
				}
				if st, err := h.Status(t.Context(), "pay-d"); err != nil || st != res {
					t.Errorf("Status = %+v, %v; want %+v like Charge", st, err, res)
				}
			})
		}
	})

	t.Run("latency", func(t *testing.T) {
		const latency = 200 * time.Millisecond
		sim := mustSim(t, simserver.Config{Latency: latency, LatencyJitter: 50 * time.Millisecond})
		h := mustClient(t, sim, payments.HTTPConfig{PollInterval: 20 * time.Millisecond})
		start := time.Now()
		res, err := h.Charge(t.Context(), "pay-slow", 4500, testCard)
		if err != nil {
			t.Fatalf("Charge: %v", err)
		}
		if took := time.Since(start); took < latency {
			t.Errorf("Charge took %v, want at least the latency %v", took, latency)
		}
		if res.Status != payments.StatusCaptured {
			t.Errorf("Charge = %+v, want captured", res)
		}
		if n := sim.Stats().Requests; n < 2 {
			t.Errorf("requests = %d, want a create and at least one poll", n)
		}
	})

	t.Run("deadline_while_processing", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{Latency: 300 * time.Millisecond})
		h := mustClient(t, sim, payments.HTTPConfig{PollInterval: 20 * time.Millisecond})
		_, err := h.Charge(withTimeout(t, 100*time.Millisecond), "pay-late", 4500, testCard)
		if !errors.Is(err, payments.ErrUnavailable) {
			t.Fatalf("Charge past its deadline = %v, want ErrUnavailable", err)
		}
		if res, err := h.Status(t.Context(), "pay-late"); err != nil || res.Status != payments.StatusProcessing {
			t.Errorf("Status right after = %+v, %v; want processing", res, err)
		}
		eventually.Check(t, 2*time.Second, func() error {
			res, err := h.Status(t.Context(), "pay-late")
			if err != nil || res.Status != payments.StatusCaptured {
				return fmt.Errorf("Status = %+v, %v; want captured", res, err)
			}
			return nil
		})
	})

	t.Run("err_other_params_same_key", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Charge(t.Context(), "pay-x", 4500, testCard); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		_, err := h.Charge(t.Context(), "pay-x", 9900, testCard)
		var apiErr *payments.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Type != "idempotency_error" {
			t.Fatalf("Charge with another amount = %v, want 400 idempotency_error", err)
		}
		if errors.Is(err, payments.ErrUnavailable) {
			t.Errorf("Charge with another amount = %v, must not wrap ErrUnavailable", err)
		}
		if captured, _ := sim.Totals(); captured != 4500 {
			t.Errorf("captured = %d cents, want 4500", captured)
		}
	})
}

func TestHTTP_Status(t *testing.T) {
	sim := mustSim(t, simserver.Config{})
	h := mustClient(t, sim, payments.HTTPConfig{})
	ctx := t.Context()

	res, err := h.Status(ctx, "pay-unknown")
	if err != nil || res != (payments.Result{Status: payments.StatusNone}) {
		t.Errorf("Status of an unknown key = %+v, %v; want none", res, err)
	}
	charged, err := h.Charge(ctx, "pay-s", 4500, testCard)
	if err != nil {
		t.Fatalf("Charge: %v", err)
	}
	if res, err := h.Status(ctx, "pay-s"); err != nil || res != charged {
		t.Errorf("Status after Charge = %+v, %v; want %+v", res, err, charged)
	}
	if err := h.Refund(ctx, "pay-s"); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if res, err := h.Status(ctx, "pay-s"); err != nil || res.Status != payments.StatusRefunded || res.Ref != charged.Ref {
		t.Errorf("Status after Refund = %+v, %v; want refunded %s", res, err, charged.Ref)
	}
}

func TestHTTP_Refund(t *testing.T) {
	t.Run("idempotent", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Charge(t.Context(), "pay-r", 4500, testCard); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if err := h.Refund(t.Context(), "pay-r"); err != nil {
					t.Errorf("Refund %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if err := h.Refund(t.Context(), "pay-r"); err != nil {
			t.Errorf("Refund after refunds: %v", err)
		}
		captured, refunded := sim.Totals()
		if captured != 4500 || refunded != 4500 {
			t.Errorf("Totals = %d captured, %d refunded; want 4500 and 4500", captured, refunded)
		}
		if n := sim.Stats().Refunds; n != 1 {
			t.Errorf("refunds = %d, want 1", n)
		}
	})

	t.Run("err_unknown_key", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, payments.HTTPConfig{})
		err := h.Refund(t.Context(), "pay-none")
		if err == nil || errors.Is(err, payments.ErrUnavailable) {
			t.Errorf("Refund of an unknown key = %v, want an error that is not ErrUnavailable", err)
		}
	})

	t.Run("err_declined", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Charge(t.Context(), "pay-dr", 4500, payments.DeclineCard); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		if err := h.Refund(t.Context(), "pay-dr"); err == nil {
			t.Errorf("Refund of a declined payment = nil, want an error")
		}
		if _, refunded := sim.Totals(); refunded != 0 {
			t.Errorf("refunded = %d cents, want 0", refunded)
		}
	})
}

func TestHTTP_RateLimit(t *testing.T) {
	t.Run("retry_after_honoured", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{RateLimit: 1, RateBurst: 1})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Status(t.Context(), "pay-1"); err != nil {
			t.Fatalf("first Status: %v", err)
		}
		start := time.Now()
		if _, err := h.Status(t.Context(), "pay-2"); err != nil {
			t.Fatalf("Status after a 429: %v", err)
		}
		if took := time.Since(start); took < 900*time.Millisecond {
			t.Errorf("Status after a 429 took %v, want about the 1 s of Retry-After", took)
		}
		if n := sim.Stats().RateLimited; n != 1 {
			t.Errorf("rate-limited requests = %d, want 1", n)
		}
		if s := h.BreakerState(); s != "closed" {
			t.Errorf("breaker = %s after one 429, want closed", s)
		}
	})

	t.Run("err_retry_after_past_deadline", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{RateLimit: 1, RateBurst: 1})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Status(t.Context(), "pay-1"); err != nil {
			t.Fatalf("first Status: %v", err)
		}
		start := time.Now()
		_, err := h.Status(withTimeout(t, 300*time.Millisecond), "pay-2")
		if !errors.Is(err, payments.ErrUnavailable) {
			t.Errorf("Status = %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > 250*time.Millisecond {
			t.Errorf("Status took %v; a Retry-After past the deadline should fail at once", took)
		}
	})

	t.Run("client_limiter_stays_under", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{RateLimit: 20, RateBurst: 2})
		h := mustClient(t, sim, payments.HTTPConfig{RateLimit: 10, RateBurst: 1})
		const calls = 8
		start := time.Now()
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				if _, err := h.Status(t.Context(), fmt.Sprintf("pay-%d", i)); err != nil {
					t.Errorf("Status %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if n := sim.Stats().RateLimited; n != 0 {
			t.Errorf("rate-limited requests = %d, want 0 with the client under the provider's limit", n)
		}
		if took, want := time.Since(start), (calls-1)*100*time.Millisecond; took < want-50*time.Millisecond {
			t.Errorf("%d calls at 10/s took %v, want about %v", calls, took, want)
		}
	})
}

func TestHTTP_Breaker(t *testing.T) {
	const failures = 3
	cfg := payments.HTTPConfig{BreakerFailures: failures, BreakerCooldown: 200 * time.Millisecond, RequestTimeout: time.Second}

	t.Run("opens_fails_fast_and_recovers", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, cfg)
		ctx := t.Context()
		sim.SetDown(true)
		for i := range failures {
			_, err := h.Status(ctx, "pay-1")
			if !errors.Is(err, payments.ErrUnavailable) || errors.Is(err, payments.ErrCircuitOpen) {
				t.Fatalf("Status %d while down = %v, want ErrUnavailable from the provider", i, err)
			}
		}
		if s := h.BreakerState(); s != "open" {
			t.Fatalf("breaker = %s after %d failures, want open", s, failures)
		}

		before := sim.Stats().Requests
		start := time.Now()
		_, err := h.Charge(ctx, "pay-1", 4500, testCard)
		if !errors.Is(err, payments.ErrUnavailable) || !errors.Is(err, payments.ErrCircuitOpen) {
			t.Errorf("Charge with the breaker open = %v, want ErrUnavailable and ErrCircuitOpen", err)
		}
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("Charge with the breaker open took %v, want a fast failure", took)
		}
		if after := sim.Stats().Requests; after != before {
			t.Errorf("requests went from %d to %d with the breaker open, want none sent", before, after)
		}

		sim.SetDown(false)
		eventually.Check(t, 2*time.Second, func() error {
			if s := h.BreakerState(); s != "half-open" {
				return fmt.Errorf("breaker = %s, want half-open after the cool-down", s)
			}
			return nil
		})
		if res, err := h.Charge(ctx, "pay-1", 4500, testCard); err != nil || res.Status != payments.StatusCaptured {
			t.Fatalf("Charge after recovery = %+v, %v; want captured", res, err)
		}
		if s := h.BreakerState(); s != "closed" {
			t.Errorf("breaker = %s after a successful probe, want closed", s)
		}
	})

	t.Run("half_open_failure_reopens", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, cfg)
		sim.SetDown(true)
		for range failures {
			_, _ = h.Status(t.Context(), "pay-1")
		}
		eventually.Check(t, 2*time.Second, func() error {
			if s := h.BreakerState(); s != "half-open" {
				return fmt.Errorf("breaker = %s, want half-open", s)
			}
			return nil
		})
		if _, err := h.Status(t.Context(), "pay-1"); errors.Is(err, payments.ErrCircuitOpen) || err == nil {
			t.Errorf("probe while still down = %v, want a provider failure", err)
		}
		if s := h.BreakerState(); s != "open" {
			t.Errorf("breaker = %s after a failed probe, want open", s)
		}
	})

	t.Run("opens_on_hang", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{HangWhenDown: true})
		hangCfg := cfg
		hangCfg.RequestTimeout = 100 * time.Millisecond
		h := mustClient(t, sim, hangCfg)
		sim.SetDown(true)
		for i := range failures {
			_, err := h.Charge(t.Context(), "pay-1", 4500, testCard)
			if !errors.Is(err, payments.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Charge %d to a hung provider = %v, want ErrUnavailable from a timeout", i, err)
			}
		}
		if s := h.BreakerState(); s != "open" {
			t.Errorf("breaker = %s after %d timeouts, want open", s, failures)
		}
	})

	t.Run("declines_and_client_errors_do_not_trip", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{})
		h := mustClient(t, sim, cfg)
		for i := range 2 * failures {
			if res, err := h.Charge(t.Context(), fmt.Sprintf("pay-%d", i), 4500, payments.DeclineCard); err != nil || res.Status != payments.StatusDeclined {
				t.Fatalf("Charge %d = %+v, %v; want declined", i, res, err)
			}
			if _, err := h.Charge(t.Context(), fmt.Sprintf("pay-%d", i), 100, testCard); err == nil {
				t.Fatalf("Charge %d with other params = nil, want an idempotency error", i)
			}
			if _, err := h.Status(t.Context(), fmt.Sprintf("unknown-%d", i)); err != nil {
				t.Fatalf("Status %d: %v", i, err)
			}
		}
		if s := h.BreakerState(); s != "closed" {
			t.Errorf("breaker = %s after declines, 400s and 404s, want closed", s)
		}
	})

	t.Run("rate_limit_counts_as_failure", func(t *testing.T) {
		sim := mustSim(t, simserver.Config{RateLimit: 0.1, RateBurst: 1})
		h := mustClient(t, sim, payments.HTTPConfig{BreakerFailures: 2, MaxRateLimitRetries: 1, MaxRetryAfter: 10 * time.Millisecond})
		if _, err := h.Status(t.Context(), "pay-1"); err != nil {
			t.Fatalf("first Status: %v", err)
		}
		_, err := h.Status(t.Context(), "pay-2")
		var apiErr *payments.APIError
		if !errors.Is(err, payments.ErrUnavailable) || !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
			t.Errorf("Status after the retries = %v, want ErrUnavailable with the 429", err)
		}
		if s := h.BreakerState(); s != "open" {
			t.Errorf("breaker = %s after two 429s, want open", s)
		}
	})
}

func TestHTTPConfig_Validate(t *testing.T) {
	ok := payments.DefaultHTTPConfig()
	ok.BaseURL = "http://127.0.0.1:8090"
	tests := []struct {
		name    string
		edit    func(c *payments.HTTPConfig)
		wantErr string
	}{
		{"ok", func(*payments.HTTPConfig) {}, ""},
		{"no_base_url", func(c *payments.HTTPConfig) { c.BaseURL = "" }, "BaseURL"},
		{"no_scheme", func(c *payments.HTTPConfig) { c.BaseURL = "127.0.0.1:8090" }, "BaseURL"},
		{"upper_currency", func(c *payments.HTTPConfig) { c.Currency = "EUR" }, "Currency"},
		{"negative_timeout", func(c *payments.HTTPConfig) { c.RequestTimeout = -time.Second }, "RequestTimeout"},
		{"negative_rate", func(c *payments.HTTPConfig) { c.RateLimit = -1 }, "RateLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	if _, err := payments.NewHTTP(payments.HTTPConfig{}, nil); err == nil {
		t.Errorf("NewHTTP without BaseURL = nil error, want one")
	}
	if _, err := payments.NewHTTP(payments.HTTPConfig{BaseURL: "http://127.0.0.1:1", RateLimit: rate.Inf}, nil); err != nil {
		t.Errorf("NewHTTP with rate.Inf: %v", err)
	}
}
