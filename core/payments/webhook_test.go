package payments_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
)

var testSecret = []byte("whsec_test")

func testEvent(id string) []byte {
	ev := payments.WebhookEvent{ID: id, Object: "event", Type: payments.EventPaymentSucceeded, Created: time.Now().Unix(),
		Data: payments.EventData{Object: payments.PaymentIntent{ID: "pi_1", Object: "payment_intent", Amount: 4500,
			AmountReceived: 4500, Currency: "eur", Status: payments.IntentSucceeded}}}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// signature returns the hex of the v1 entry that SignWebhook makes.
func signature(secret []byte, t time.Time, payload []byte) string {
	_, sig, _ := strings.Cut(payments.SignWebhook(secret, t, payload), "v1=")
	return sig
}

// postWebhook sends payload with header and returns the status.
func postWebhook(t *testing.T, url string, payload []byte, header string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if header != "" {
		req.Header.Set(payments.SignatureHeader, header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post webhook: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestWebhookHandler_Signature(t *testing.T) {
	var got eventLog
	url := mustServe(t, payments.WebhookHandler(testSecret, got.add))
	now := time.Now()
	payload := testEvent("evt_sig")

	tests := []struct {
		name    string
		payload []byte
		header  string
		want    int
	}{
		{"ok", payload, payments.SignWebhook(testSecret, now, payload), http.StatusOK},
		{"second_v1_matches", payload, payments.SignWebhook([]byte("old"), now, payload) + ",v1=" + signature(testSecret, now, payload), http.StatusOK},
		{"missing_header", payload, "", http.StatusBadRequest},
		{"malformed_header", payload, "garbage", http.StatusBadRequest},
		{"no_v1", payload, fmt.Sprintf("t=%d", now.Unix()), http.StatusBadRequest},
		{"wrong_secret", payload, payments.SignWebhook([]byte("other"), now, payload), http.StatusBadRequest},
		{"tampered_body", bytes.Replace(payload, []byte("4500"), []byte("1"), 1), payments.SignWebhook(testSecret, now, payload), http.StatusBadRequest},
		{"replayed_old_timestamp", payload, payments.SignWebhook(testSecret, now.Add(-payments.WebhookTolerance-time.Minute), payload), http.StatusBadRequest},
		{"future_timestamp", payload, payments.SignWebhook(testSecret, now.Add(payments.WebhookTolerance+time.Minute), payload), http.StatusBadRequest},
		{"signed_but_not_json", []byte("nope"), payments.SignWebhook(testSecret, now, []byte("nope")), http.StatusBadRequest},
		{"signed_but_no_id", []byte(`{"type":"x"}`), payments.SignWebhook(testSecret, now, []byte(`{"type":"x"}`)), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status := postWebhook(t, url, tt.payload, tt.header); status != tt.want {
				t.Errorf("POST = %d, want %d", status, tt.want)
			}
		})
	}
	if n := len(got.list()); n != 1 {
		t.Errorf("onEvent called %d times, want once (the two valid deliveries share an id)", n)
	}

	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", resp.StatusCode)
	}
}

func TestWebhookHandler_Dedup(t *testing.T) {
	t.Run("duplicate_passed_on_once", func(t *testing.T) {
		var got eventLog
		url := mustServe(t, payments.WebhookHandler(testSecret, got.add))
		payload := testEvent("evt_dup")
		for i := range 3 {
			if status := postWebhook(t, url, payload, payments.SignWebhook(testSecret, time.Now(), payload)); status != http.StatusOK {
				t.Errorf("delivery %d = %d, want 200", i, status)
			}
		}
		if n := len(got.list()); n != 1 {
			t.Errorf("onEvent called %d times, want 1", n)
		}
	})

	t.Run("failed_event_retried", func(t *testing.T) {
		var calls atomic.Int32
		url := mustServe(t, payments.WebhookHandler(testSecret, func(context.Context, payments.WebhookEvent) error {
			if calls.Add(1) == 1 {
				return errors.New("database down")
			}
			return nil
		}))
		payload := testEvent("evt_retry")
		if status := postWebhook(t, url, payload, payments.SignWebhook(testSecret, time.Now(), payload)); status != http.StatusInternalServerError {
			t.Errorf("delivery with onEvent failing = %d, want 500", status)
		}
		if status := postWebhook(t, url, payload, payments.SignWebhook(testSecret, time.Now(), payload)); status != http.StatusOK {
			t.Errorf("redelivery = %d, want 200", status)
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("onEvent called %d times, want 2: a failed event is not remembered", n)
		}
	})

	t.Run("copy_in_flight_conflicts", func(t *testing.T) {
		release := make(chan struct{})
		entered := make(chan struct{})
		url := mustServe(t, payments.WebhookHandler(testSecret, func(context.Context, payments.WebhookEvent) error {
			close(entered)
			<-release
			return nil
		}))
		payload := testEvent("evt_slow")
		first := make(chan int)
		go func() { first <- postWebhook(t, url, payload, payments.SignWebhook(testSecret, time.Now(), payload)) }()
		<-entered
		if status := postWebhook(t, url, payload, payments.SignWebhook(testSecret, time.Now(), payload)); status != http.StatusConflict {
			t.Errorf("copy while the first is handled = %d, want 409", status)
		}
		close(release)
		if status := <-first; status != http.StatusOK {
			t.Errorf("first delivery = %d, want 200", status)
		}
	})
}

// deliveryCounter counts the POSTs per event id that reach the handler,
// before de-duplication.
type deliveryCounter struct {
	next http.Handler

	mu    sync.Mutex // guards count
	count map[string]int
}

func (d *deliveryCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev payments.WebhookEvent
	if json.Unmarshal(body, &ev) == nil {
		d.mu.Lock()
		d.count[ev.ID]++
		d.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	d.next.ServeHTTP(w, r)
}

func (d *deliveryCounter) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.count {
		n += c
	}
	return n
}

func TestWebhook_FromSimulator(t *testing.T) {
	const numPayments = 40
	var got eventLog
	counter := &deliveryCounter{next: payments.WebhookHandler(testSecret, got.add), count: map[string]int{}}
	url := mustServe(t, counter)
	sim := mustSim(t, simserver.Config{
		WebhookURL:           url,
		WebhookSecret:        testSecret,
		WebhookJitter:        20 * time.Millisecond,
		WebhookDuplicateRate: 1,
		// Both copies of a success are held back with probability 0.49,
		// and a refund's first copy is not with probability 0.51. So a
		// refund overtakes its success for about a quarter of the
		// payments, and the chance that none of 40 does is about 1e-5.
		WebhookLateRate:  0.7,
		WebhookLateDelay: 300 * time.Millisecond,
		Seed:             1,
	})
	h := mustClient(t, sim, payments.HTTPConfig{})

	amounts := map[string]int64{}
	for i := range numPayments {
		key := fmt.Sprintf("pay-%d", i)
		amounts[key] = int64(1000 + i)
		if _, err := h.Charge(t.Context(), key, amounts[key], testCard); err != nil {
			t.Fatalf("Charge %s: %v", key, err)
		}
		if err := h.Refund(t.Context(), key); err != nil {
			t.Fatalf("Refund %s: %v", key, err)
		}
	}

	// Every event is delivered twice and passed on once.
	eventually.Check(t, 5*time.Second, func() error {
		if n := sim.Stats().WebhooksDelivered; n != 4*numPayments {
			return fmt.Errorf("%d deliveries acknowledged, want %d", n, 4*numPayments)
		}
		return nil
	})
	if n := counter.total(); n < 4*numPayments {
		t.Errorf("%d POSTs reached the receiver, want at least %d", n, 4*numPayments)
	}
	events := got.list()
	if len(events) != 2*numPayments {
		t.Fatalf("onEvent called %d times, want %d: one success and one refund per payment", len(events), 2*numPayments)
	}

	seen := map[string]bool{}
	succeeded := map[string]bool{}
	overtaken := 0
	for _, ev := range events {
		if seen[ev.ID] {
			t.Errorf("event %s passed on twice", ev.ID)
		}
		seen[ev.ID] = true
		pi := ev.Data.Object
		key := pi.Metadata[payments.MetadataPaymentID]
		if pi.Amount != amounts[key] {
			t.Errorf("event %s for %q has amount %d, want %d", ev.ID, key, pi.Amount, amounts[key])
		}
		switch ev.Type {
		case payments.EventPaymentSucceeded:
			succeeded[key] = true
		case payments.EventChargeRefunded:
			if pi.AmountRefunded != pi.Amount {
				t.Errorf("refund event of %q has amount_refunded %d, want %d", key, pi.AmountRefunded, pi.Amount)
			}
			if !succeeded[key] {
				overtaken++
			}
		default:
			t.Errorf("unexpected event type %s", ev.Type)
		}
	}
	if overtaken == 0 {
		t.Errorf("no refund arrived before its success; the simulator should reorder some")
	}
	t.Logf("%d of %d refunds arrived before their success", overtaken, numPayments)
}

func TestWebhook_SimulatorRetries(t *testing.T) {
	t.Run("until_2xx", func(t *testing.T) {
		var calls atomic.Int32
		var got eventLog
		url := mustServe(t, payments.WebhookHandler(testSecret, func(ctx context.Context, ev payments.WebhookEvent) error {
			if calls.Add(1) <= 2 {
				return errors.New("not yet")
			}
			return got.add(ctx, ev)
		}))
		sim := mustSim(t, simserver.Config{WebhookURL: url, WebhookSecret: testSecret, WebhookRetryBackoff: 10 * time.Millisecond})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Charge(t.Context(), "pay-1", 4500, testCard); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		eventually.Check(t, 5*time.Second, func() error {
			if n := len(got.list()); n != 1 {
				return fmt.Errorf("%d events handled, want 1", n)
			}
			return nil
		})
		if n := calls.Load(); n != 3 {
			t.Errorf("onEvent called %d times, want 3", n)
		}
	})

	t.Run("gives_up", func(t *testing.T) {
		url := mustServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "always failing", http.StatusInternalServerError)
		}))
		sim := mustSim(t, simserver.Config{WebhookURL: url, WebhookSecret: testSecret,
			WebhookMaxAttempts: 3, WebhookRetryBackoff: 10 * time.Millisecond})
		h := mustClient(t, sim, payments.HTTPConfig{})
		if _, err := h.Charge(t.Context(), "pay-1", 4500, testCard); err != nil {
			t.Fatalf("Charge: %v", err)
		}
		eventually.Check(t, 5*time.Second, func() error {
			if st := sim.Stats(); st.WebhooksFailed != 1 || st.WebhooksDelivered != 0 {
				return fmt.Errorf("webhooks failed %d, delivered %d; want 1 and 0", st.WebhooksFailed, st.WebhooksDelivered)
			}
			return nil
		})
	})
}
