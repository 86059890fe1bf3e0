package inventory_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// mustProvider starts the simulated provider as an HTTP server on
// loopback and returns it with an HTTP client that has a short breaker
// cool-down, so a test sees it open and close.
func mustProvider(t *testing.T, cfg simserver.Config) (*simserver.Server, *payments.HTTP) {
	t.Helper()
	srv, err := simserver.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(ln)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	hcfg := payments.DefaultHTTPConfig()
	hcfg.BaseURL = srv.URL()
	hcfg.BreakerFailures, hcfg.BreakerCooldown = 3, 300*time.Millisecond
	hcfg.RequestTimeout = time.Second
	client, err := payments.NewHTTP(hcfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

func holdInCheckout(t *testing.T, svc *inventory.Service, session, seat string) *waitroom.Hold {
	t.Helper()
	ctx := context.Background()
	h, err := svc.Hold(ctx, waitroom.HoldRequest{SaleID: "t-1", Session: session, IdempotencyKey: "k-" + seat, SeatIDs: []string{seat}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Checkout(ctx, h.ID, session); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestService_ProviderDown takes the provider down during payments: the
// breaker opens and fans are told to retry, no payment is lost or taken
// twice, and once the provider is back the same requests complete.
func TestService_ProviderDown(t *testing.T) {
	db := mustDB(t)
	cfg := simserver.DefaultConfig()
	cfg.Latency, cfg.LatencyJitter, cfg.DeclineRate = 0, 0, 0
	srv, client := mustProvider(t, cfg)
	svc := mustService(t, db, client, inventory.DefaultConfig())
	ctx := context.Background()

	srv.SetDown(true)
	var holds []*waitroom.Hold
	for i := range 5 {
		h := holdInCheckout(t, svc, fmt.Sprint("fan-", i), fmt.Sprintf("s-1-%d", i+1))
		holds = append(holds, h)
		_, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: h.Session, Card: "4242424242424242"})
		if waitroom.ErrorCode(err) != waitroom.EUNAVAILABLE {
			t.Fatalf("pay while the provider is down = %v, want unavailable", err)
		}
	}
	if got := client.BreakerState(); got != "open" {
		t.Errorf("breaker = %s after repeated failures, want open", got)
	}

	srv.SetDown(false)
	eventually.Check(t, 10*time.Second, func() error {
		for _, h := range holds {
			res, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: h.Session, Card: "4242424242424242"})
			if err != nil {
				return err
			}
			if res.Order == nil {
				return fmt.Errorf("hold %s has no order", h.ID)
			}
		}
		return nil
	})
	captured, refunded := srv.Totals()
	if captured != 5*5000 || refunded != 0 {
		t.Errorf("provider captured %d and refunded %d cents, want %d and 0", captured, refunded, 5*5000)
	}
	checkInvariants(t, db)
}

// TestService_WebhooksLateDuplicatedOutOfOrder settles payments through
// webhooks that the simulator delivers late, twice and out of order, while
// the core never hears the answer of the charge itself.
func TestService_WebhooksLateDuplicatedOutOfOrder(t *testing.T) {
	db := mustDB(t)
	secret := []byte("webhook test secret")
	svc0 := inventory.New(db, nil, inventory.DefaultConfig(), testLogger(t))
	hooks := http.NewServeMux()
	hooks.Handle("/hooks", payments.WebhookHandler(secret, svc0.HandleWebhook))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: hooks}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	cfg := simserver.DefaultConfig()
	cfg.Latency, cfg.LatencyJitter, cfg.DeclineRate = 20*time.Millisecond, 0, 0.3
	cfg.WebhookURL, cfg.WebhookSecret = "http://"+ln.Addr().String()+"/hooks", secret
	cfg.WebhookDuplicateRate, cfg.WebhookLateRate, cfg.WebhookLateDelay = 0.5, 0.5, 300*time.Millisecond
	srv, client := mustProvider(t, cfg)
	// The core's own charge calls lose their answers, so only webhooks
	// (and the sweeper, not run here) can settle the payments.
	svc := mustService(t, db, crashAfterCharge{Sim: nil, inner: client}, inventory.DefaultConfig())

	ctx := context.Background()
	var holds []*waitroom.Hold
	for i := range 10 {
		h := holdInCheckout(t, svc, fmt.Sprint("fan-", i), fmt.Sprintf("s-1-%d", i+1))
		holds = append(holds, h)
		if _, err := svc.Pay(ctx, waitroom.PayRequest{HoldID: h.ID, Session: h.Session, Card: "4242424242424242"}); waitroom.ErrorCode(err) != waitroom.EUNAVAILABLE {
			t.Fatalf("pay = %v, want unavailable", err)
		}
	}
	eventually.Check(t, 15*time.Second, func() error {
		for _, h := range holds {
			got, err := svc.FindHoldByID(ctx, h.ID, h.Session)
			if err != nil {
				return err
			}
			if got.State != waitroom.HoldSold && got.State != waitroom.HoldReleased {
				return fmt.Errorf("hold %s is still %s", h.ID, got.State)
			}
		}
		return nil
	})
	// Wait for the late copies too; they must change nothing.
	time.Sleep(500 * time.Millisecond)
	var sold int64
	for _, h := range holds {
		got, err := svc.FindHoldByID(ctx, h.ID, h.Session)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == waitroom.HoldSold {
			sold += got.TotalCents
		}
	}
	captured, refunded := srv.Totals()
	if captured-refunded != sold {
		t.Errorf("provider kept %d cents, sold holds are worth %d", captured-refunded, sold)
	}
	checkInvariants(t, db)
}
