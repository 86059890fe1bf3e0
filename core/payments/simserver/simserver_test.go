package simserver_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
)

func mustStart(t *testing.T, cfg simserver.Config) *simserver.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sim, err := simserver.New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	sim.Start(ln)
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim
}

// request is one call to the simulator.
type request struct {
	method, path, key, contentType, body string
	header                               http.Header
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) intent(t *testing.T) payments.PaymentIntent {
	t.Helper()
	var pi payments.PaymentIntent
	if err := json.Unmarshal(r.body, &pi); err != nil || pi.ID == "" {
		t.Fatalf("decode intent from %d %s: %v", r.status, r.body, err)
	}
	return pi
}

func (r response) error(t *testing.T) payments.ErrorBody {
	t.Helper()
	var er payments.ErrorResponse
	if err := json.Unmarshal(r.body, &er); err != nil || er.Error.Type == "" {
		t.Fatalf("decode error from %d %s: %v", r.status, r.body, err)
	}
	return er.Error
}

func do(t *testing.T, sim *simserver.Server, r request) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, sim.URL()+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if r.key != "" {
		req.Header.Set("Idempotency-Key", r.key)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", cmp.Or(r.contentType, "application/x-www-form-urlencoded"))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func form(amount int, card string) string {
	return url.Values{"amount": {fmt.Sprint(amount)}, "currency": {"eur"}, "card": {card}, "metadata[payment_id]": {"p1"}}.Encode()
}

func TestServer_CreateIntent(t *testing.T) {
	t.Run("form_then_replay", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{})
		first := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242424242424242")})
		if first.status != http.StatusOK {
			t.Fatalf("create = %d %s, want 200", first.status, first.body)
		}
		pi := first.intent(t)
		if pi.Status != payments.IntentSucceeded || pi.AmountReceived != 4500 || pi.Metadata["payment_id"] != "p1" {
			t.Errorf("intent = %+v, want succeeded with 4500 received and the metadata", pi)
		}
		again := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242 4242 4242 4242")})
		if got := again.intent(t); got.ID != pi.ID || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay = %s (replayed %q), want %s replayed", got.ID, again.header.Get("Idempotent-Replayed"), pi.ID)
		}
		if captured, _ := sim.Totals(); captured != 4500 {
			t.Errorf("captured = %d, want 4500 once", captured)
		}
	})

	t.Run("json_body", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{})
		r := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", contentType: "application/json",
			body: `{"amount": 4500, "currency": "eur", "card": "4242424242424242", "metadata": {"payment_id": "p1"}}`})
		if pi := r.intent(t); r.status != http.StatusOK || pi.Status != payments.IntentSucceeded || pi.Metadata["payment_id"] != "p1" {
			t.Errorf("create from JSON = %d %+v, want 200 succeeded", r.status, pi)
		}
	})

	t.Run("err_idempotency_key_reused", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{})
		do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242424242424242")})
		r := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(9900, "4242424242424242")})
		if e := r.error(t); r.status != http.StatusBadRequest || e.Type != "idempotency_error" {
			t.Errorf("reuse with another amount = %d %+v, want 400 idempotency_error", r.status, e)
		}
	})

	t.Run("declined_is_402_with_intent", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{})
		r := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, payments.DeclineCard)})
		e := r.error(t)
		if r.status != http.StatusPaymentRequired || e.Type != "card_error" || e.DeclineCode != "generic_decline" ||
			e.PaymentIntent == nil || e.PaymentIntent.Status != payments.IntentRequiresPaymentMethod {
			t.Errorf("declined create = %d %s, want 402 card_error with the intent", r.status, r.body)
		}
	})

	t.Run("processing_with_latency", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{Latency: time.Hour})
		r := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242424242424242")})
		if pi := r.intent(t); pi.Status != payments.IntentProcessing {
			t.Errorf("status = %s, want processing", pi.Status)
		}
	})

	bad := []struct {
		name, body, code string
	}{
		{"err_missing_amount", "currency=eur&card=4242424242424242", "parameter_missing"},
		{"err_zero_amount", "amount=0&currency=eur&card=4242424242424242", "parameter_invalid_integer"},
		{"err_upper_currency", "amount=1&currency=EUR&card=4242424242424242", "invalid_currency"},
		{"err_unknown_param", "amount=1&currency=eur&card=4242424242424242&capture_method=manual", "parameter_unknown"},
		{"err_confirm_false", "amount=1&currency=eur&card=4242424242424242&confirm=false", "parameter_invalid_boolean"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			sim := mustStart(t, simserver.Config{})
			r := do(t, sim, request{method: "POST", path: "/v1/payment_intents", body: tt.body})
			if e := r.error(t); r.status != http.StatusBadRequest || e.Code != tt.code {
				t.Errorf("create(%q) = %d %+v, want 400 %s", tt.body, r.status, e, tt.code)
			}
		})
	}
}

func TestServer_FindIntent(t *testing.T) {
	sim := mustStart(t, simserver.Config{})
	created := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242424242424242")}).intent(t)

	tests := []struct {
		name, path string
		want       int
	}{
		{"by_id", "/v1/payment_intents/" + created.ID, http.StatusOK},
		{"by_key", "/v1/payment_intents?idempotency_key=k1", http.StatusOK},
		{"err_unknown_id", "/v1/payment_intents/pi_nope", http.StatusNotFound},
		{"err_unknown_key", "/v1/payment_intents?idempotency_key=nope", http.StatusNotFound},
		{"err_no_key", "/v1/payment_intents", http.StatusBadRequest},
		{"err_unknown_path", "/v1/charges", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, sim, request{method: "GET", path: tt.path})
			if r.status != tt.want {
				t.Fatalf("GET %s = %d %s, want %d", tt.path, r.status, r.body, tt.want)
			}
			if r.status == http.StatusOK && r.intent(t).ID != created.ID {
				t.Errorf("GET %s = %s, want %s", tt.path, r.intent(t).ID, created.ID)
			}
		})
	}
}

func TestServer_Refund(t *testing.T) {
	sim := mustStart(t, simserver.Config{})
	pi := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(4500, "4242424242424242")}).intent(t)
	body := "payment_intent=" + pi.ID

	first := do(t, sim, request{method: "POST", path: "/v1/refunds", key: "refund-k1", body: body})
	var re payments.Refund
	if err := json.Unmarshal(first.body, &re); err != nil || first.status != http.StatusOK || re.Amount != 4500 || re.PaymentIntent != pi.ID {
		t.Fatalf("refund = %d %s, want 200 for 4500 of %s", first.status, first.body, pi.ID)
	}
	again := do(t, sim, request{method: "POST", path: "/v1/refunds", key: "refund-k1", body: body})
	var re2 payments.Refund
	if err := json.Unmarshal(again.body, &re2); err != nil || re2.ID != re.ID {
		t.Errorf("repeated refund = %s, want the same refund %s", again.body, re.ID)
	}
	other := do(t, sim, request{method: "POST", path: "/v1/refunds", key: "refund-other", body: body})
	if e := other.error(t); other.status != http.StatusBadRequest || e.Code != "charge_already_refunded" {
		t.Errorf("second refund under a new key = %d %+v, want 400 charge_already_refunded", other.status, e)
	}
	if got := do(t, sim, request{method: "GET", path: "/v1/payment_intents/" + pi.ID}).intent(t); got.AmountRefunded != 4500 {
		t.Errorf("amount_refunded = %d, want 4500", got.AmountRefunded)
	}
	if captured, refunded := sim.Totals(); captured != 4500 || refunded != 4500 {
		t.Errorf("Totals = %d, %d; want 4500, 4500", captured, refunded)
	}

	t.Run("err_partial_too_large", func(t *testing.T) {
		pi := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k2", body: form(1000, "4242424242424242")}).intent(t)
		r := do(t, sim, request{method: "POST", path: "/v1/refunds", body: "amount=1001&payment_intent=" + pi.ID})
		if e := r.error(t); r.status != http.StatusBadRequest || e.Code != "amount_too_large" {
			t.Errorf("refund of 1001 of 1000 = %d %+v, want 400 amount_too_large", r.status, e)
		}
	})

	t.Run("err_not_succeeded", func(t *testing.T) {
		slow := mustStart(t, simserver.Config{Latency: time.Hour})
		pi := do(t, slow, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(1000, "4242424242424242")}).intent(t)
		r := do(t, slow, request{method: "POST", path: "/v1/refunds", body: "payment_intent=" + pi.ID})
		if e := r.error(t); r.status != http.StatusBadRequest || e.Code != "payment_intent_unexpected_state" {
			t.Errorf("refund of a processing intent = %d %+v, want 400 payment_intent_unexpected_state", r.status, e)
		}
	})
}

func TestServer_Cancel(t *testing.T) {
	sim := mustStart(t, simserver.Config{Latency: 50 * time.Millisecond})
	pi := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k1", body: form(1000, "4242424242424242")}).intent(t)
	r := do(t, sim, request{method: "POST", path: "/v1/payment_intents/" + pi.ID + "/cancel"})
	if got := r.intent(t); got.Status != payments.IntentCanceled || got.CancellationReason != "requested_by_customer" {
		t.Fatalf("cancel = %d %+v, want canceled", r.status, got)
	}
	again := do(t, sim, request{method: "POST", path: "/v1/payment_intents/" + pi.ID + "/cancel"})
	if e := again.error(t); again.status != http.StatusBadRequest || e.Code != "payment_intent_unexpected_state" {
		t.Errorf("second cancel = %d %+v, want 400 payment_intent_unexpected_state", again.status, e)
	}
	// The settlement scheduled for the canceled intent must not capture it.
	// A witness created later with the same fixed latency settles after it.
	witness := do(t, sim, request{method: "POST", path: "/v1/payment_intents", key: "k2", body: form(1000, "4242424242424242")}).intent(t)
	eventually.Check(t, 2*time.Second, func() error {
		if got := do(t, sim, request{method: "GET", path: "/v1/payment_intents/" + witness.ID}).intent(t); got.Status != payments.IntentSucceeded {
			return fmt.Errorf("witness status = %s, want succeeded", got.Status)
		}
		return nil
	})
	if got := do(t, sim, request{method: "GET", path: "/v1/payment_intents/" + pi.ID}).intent(t); got.Status != payments.IntentCanceled {
		t.Errorf("status after the latency = %s, want canceled", got.Status)
	}
	if captured, _ := sim.Totals(); captured != 1000 {
		t.Errorf("captured = %d, want 1000 of the witness only", captured)
	}
}

func TestServer_Gate(t *testing.T) {
	t.Run("rate_limit", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{RateLimit: 1, RateBurst: 1})
		if r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a"}); r.status != http.StatusNotFound {
			t.Fatalf("first request = %d, want 404", r.status)
		}
		r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a"})
		if e := r.error(t); r.status != http.StatusTooManyRequests || e.Code != "rate_limit" || r.header.Get("Retry-After") != "1" {
			t.Errorf("second request = %d %+v Retry-After %q, want 429 rate_limit with Retry-After 1", r.status, e, r.header.Get("Retry-After"))
		}
		if n := sim.Stats().RateLimited; n != 1 {
			t.Errorf("RateLimited = %d, want 1", n)
		}
	})

	t.Run("down", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{})
		sim.SetDown(true)
		if r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a"}); r.status != http.StatusServiceUnavailable {
			t.Errorf("request while down = %d, want 503", r.status)
		}
		sim.SetDown(false)
		if r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a"}); r.status != http.StatusNotFound {
			t.Errorf("request after recovery = %d, want 404", r.status)
		}
	})

	t.Run("hang_ends_at_close", func(t *testing.T) {
		sim, err := simserver.New(simserver.Config{HangWhenDown: true}, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		sim.Start(ln)
		sim.SetDown(true)

		done := make(chan error, 1)
		go func() {
			resp, err := http.Get(sim.URL() + "/v1/payment_intents/pi_1")
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		eventually.Check(t, 2*time.Second, func() error {
			if n := sim.Stats().Requests; n != 1 {
				return fmt.Errorf("%d requests reached the simulator, want 1", n)
			}
			return nil
		})
		select {
		case err := <-done:
			t.Fatalf("request to a hung simulator returned: %v", err)
		default:
		}

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-done
		if err := sim.Close(ctx); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	})

	t.Run("api_key", func(t *testing.T) {
		sim := mustStart(t, simserver.Config{APIKey: "sk_test"})
		if r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a"}); r.status != http.StatusUnauthorized {
			t.Errorf("request without a key = %d, want 401", r.status)
		}
		r := do(t, sim, request{method: "GET", path: "/v1/payment_intents?idempotency_key=a",
			header: http.Header{"Authorization": {"Bearer sk_test"}}})
		if r.status != http.StatusNotFound {
			t.Errorf("request with the key = %d, want 404", r.status)
		}
	})
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     simserver.Config
		wantErr string
	}{
		{"default", simserver.DefaultConfig(), ""},
		{"decline_rate_above_1", simserver.Config{DeclineRate: 1.5}, "DeclineRate"},
		{"negative_latency", simserver.Config{Latency: -time.Second}, "Latency"},
		{"limit_without_burst", simserver.Config{RateLimit: 10}, "RateBurst"},
		{"webhook_without_secret", simserver.Config{WebhookURL: "http://127.0.0.1:1/hooks"}, "WebhookSecret"},
		{"webhook_bad_url", simserver.Config{WebhookURL: "127.0.0.1:1", WebhookSecret: []byte("s")}, "WebhookURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
}
