package payments_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
)

const testCard = "4242424242424242"

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// mustSim starts a simulator on 127.0.0.1 and closes it when the test ends.
func mustSim(tb testing.TB, cfg simserver.Config) *simserver.Server {
	tb.Helper()
	sim, err := simserver.New(cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("simserver.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	sim.Start(ln)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sim.Close(ctx); err != nil {
			tb.Errorf("close simulator: %v", err)
		}
	})
	return sim
}

// mustClient returns a client of sim. Zero fields of cfg take the
// defaults, except the rate limit, which is off unless cfg sets one.
func mustClient(tb testing.TB, sim *simserver.Server, cfg payments.HTTPConfig) *payments.HTTP {
	tb.Helper()
	cfg.BaseURL = sim.URL()
	if cfg.RateLimit == 0 {
		cfg.RateLimit = rate.Inf
	}
	h, err := payments.NewHTTP(cfg, testLogger(tb))
	if err != nil {
		tb.Fatalf("NewHTTP: %v", err)
	}
	tb.Cleanup(h.CloseIdleConnections)
	return h
}

// mustServe serves h on 127.0.0.1 and returns its URL.
func mustServe(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// eventLog records the events a webhook consumer received, in order.
type eventLog struct {
	mu     sync.Mutex // guards events
	events []payments.WebhookEvent
}

func (l *eventLog) add(_ context.Context, ev payments.WebhookEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	return nil
}

func (l *eventLog) list() []payments.WebhookEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]payments.WebhookEvent(nil), l.events...)
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
