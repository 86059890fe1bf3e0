package launch_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/deploy/launch"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const sale = "smoke-1"

// mustStart starts the whole system on free ports with the smoke catalog.
func mustStart(t *testing.T, rate, capacity int) (*launch.System, *client.Client) {
	t.Helper()
	cfg := launch.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSPort, cfg.NATSMonitorPort = -1, -1
	cfg.DatabaseURL = pgtest.Start(t)
	cfg.Catalog = "smoke"
	cfg.Payments.Latency = 10 * time.Millisecond
	cfg.Core.Initial.RatePerMinute, cfg.Core.Initial.Cap = rate, capacity
	cfg.Edge.HTTP.Difficulty = 4
	cfg.Edge.Limits.PerAddr, cfg.Edge.Limits.BurstAddr = 1000, 1000
	cfg.Edge.Limits.PerSubnet, cfg.Edge.Limits.BurstSubnet = 1000, 1000
	cfg.Edge.WS.Interval = 100 * time.Millisecond
	cfg.Core.Admission.Tick = 50 * time.Millisecond
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys, err := launch.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start system: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Close(ctx); err != nil {
			t.Errorf("close system: %v", err)
		}
	})
	return sys, client.New(sys.URL, nil)
}

func mustJoin(t *testing.T, c *client.Client, key string) *wire.JoinResponse {
	t.Helper()
	r, err := c.Join(context.Background(), sale, key)
	if err != nil {
		t.Fatalf("join %s: %v", key, err)
	}
	return r
}

func TestSystem_JoinRetrySamePlace(t *testing.T) {
	_, c := mustStart(t, 0, 100) // rate 0: nobody is admitted
	ctx := context.Background()
	first := mustJoin(t, c, "fan-a")
	mustJoin(t, c, "fan-b")
	again := mustJoin(t, c, "fan-a")
	if again.Status.Session != first.Status.Session || again.Status.Position != 1 {
		t.Errorf("retried join = %s at %d, want %s at 1", again.Status.Session, again.Status.Position, first.Status.Session)
	}
	var byTicket wire.JoinResponse
	err := c.Do(ctx, http.MethodPost, "/api/v1/sales/"+sale+"/join", "", "", wire.JoinRequest{Ticket: first.Ticket}, &byTicket)
	if err != nil || byTicket.Status.Session != first.Status.Session {
		t.Errorf("join with ticket = %+v, %v; want the same session", byTicket.Status, err)
	}
	st, err := c.Status(ctx, first.Ticket)
	if err != nil || st.State != queue.Waiting || st.Position != 1 || st.Ahead != 0 {
		t.Errorf("status = %+v, %v; want waiting at 1", st, err)
	}
}

// TestSystem_PositionsNeverGoUp joins fans, then admits and removes fans
// ahead of the last one while watching its WebSocket: every frame's
// position must be at most the one before.
func TestSystem_PositionsNeverGoUp(t *testing.T) {
	sys, c := mustStart(t, 0, 1000)
	ctx := context.Background()
	var tickets []string
	for i := range 20 {
		tickets = append(tickets, mustJoin(t, c, fmt.Sprint("fan-", i)).Ticket)
	}
	sock, err := c.Dial(ctx, tickets[19])
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	var mu sync.Mutex
	var seen []int
	done := make(chan error, 1)
	go func() {
		for {
			st, err := sock.Next(time.Now().Add(20 * time.Second))
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			seen = append(seen, st.Position)
			mu.Unlock()
			if st.State == queue.Admitted {
				done <- nil
				return
			}
		}
	}()

	// Fans ahead leave and new fans join behind, then admissions start.
	for i := 3; i < 8; i++ {
		if _, err := c.Leave(ctx, tickets[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		mustJoin(t, c, fmt.Sprint("late-", i))
	}
	mustControl(t, sys, wire.Control{RatePerMinute: 600, Cap: 1000, ShoppingSeconds: 600})
	if err := <-done; err != nil {
		t.Fatalf("websocket: %v (positions %v)", err, seen)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seen); i++ {
		if seen[i] > seen[i-1] && seen[i] != 0 {
			t.Fatalf("position went up: %v", seen)
		}
	}
	if len(seen) < 2 || seen[0] != 20 {
		t.Errorf("positions seen %v, want to start at 20", seen)
	}
}

func mustControl(t *testing.T, sys *launch.System, ctl wire.Control) {
	t.Helper()
	if err := sys.SetControl(context.Background(), sale, ctl, "test"); err != nil {
		t.Fatalf("set control: %v", err)
	}
}

// TestSystem_Purchase walks one fan from join to order through the API.
func TestSystem_Purchase(t *testing.T) {
	_, c := mustStart(t, 600, 100)
	ctx := context.Background()
	j := mustJoin(t, c, "buyer")
	sock, err := c.Dial(ctx, j.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var admission string
	for admission == "" {
		st, err := sock.Next(time.Now().Add(20 * time.Second))
		if err != nil {
			t.Fatalf("waiting for admission: %v", err)
		}
		if st.Admission != nil {
			admission = st.Admission.Token
		}
	}

	m, err := c.SeatMap(ctx, sale, admission)
	if err != nil || len(m.Sections) == 0 {
		t.Fatalf("seat map = %+v, %v", m, err)
	}
	h, err := c.Hold(ctx, admission, "hold-1", wire.HoldBody{Section: "g1", Quantity: 3})
	if err != nil || len(h.Seats) != 3 {
		t.Fatalf("hold = %+v, %v", h, err)
	}
	again, err := c.Hold(ctx, admission, "hold-1", wire.HoldBody{Section: "g1", Quantity: 3})
	if err != nil || again.ID != h.ID {
		t.Errorf("retried hold = %+v, %v; want %s", again, err, h.ID)
	}
	if _, err := c.Checkout(ctx, admission, h.ID); err != nil {
		t.Fatal(err)
	}
	res, err := c.Pay(ctx, admission, h.ID, "4242 4242 4242 4242")
	if err != nil || res.Order == nil {
		t.Fatalf("pay = %+v, %v", res, err)
	}
	o, err := c.Order(ctx, j.Ticket, res.Order.ID)
	if err != nil || o.State != "PAID" || len(o.Seats) != 3 {
		t.Errorf("order = %+v, %v", o, err)
	}
	var cancelled waitroom.Order
	if err := c.Do(ctx, http.MethodPost, "/api/v1/orders/"+o.ID+"/cancel", j.Ticket, "", nil, &cancelled); err != nil || cancelled.State != "REFUNDED" {
		t.Errorf("cancel = %+v, %v; want REFUNDED", cancelled, err)
	}
	// The purchase ended the fan's shopping slot: no second hold.
	eventually.Check(t, 5*time.Second, func() error {
		_, err := c.Hold(ctx, admission, "hold-2", wire.HoldBody{Section: "g1", Quantity: 1})
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			return nil
		}
		return fmt.Errorf("second hold = %v, want 401", err)
	})
}

func TestSystem_BadInput(t *testing.T) {
	_, c := mustStart(t, 0, 100)
	j := mustJoin(t, c, "fan")
	forged := j.Ticket[:len(j.Ticket)-4] + "AAAA"
	tests := []struct {
		name, method, path, bearer, body string
		status                           int
		code                             string
	}{
		{"malformed_json", "POST", "/api/v1/sales/" + sale + "/join", "", `{"challenge":`, 400, "invalid"},
		{"unknown_field", "POST", "/api/v1/sales/" + sale + "/join", "", `{"challange":"x"}`, 400, "invalid"},
		{"not_an_object", "POST", "/api/v1/sales/" + sale + "/join", "", `[1,2]`, 400, "invalid"},
		{"unknown_sale", "POST", "/api/v1/sales/no-such-show/join", "", `{}`, 404, "not_found"},
		{"invalid_sale_id", "GET", "/api/v1/sales/BAD!/challenge", "", ``, 404, "not_found"},
		{"bad_proof_of_work", "POST", "/api/v1/sales/" + sale + "/join", "", `{"challenge":"x","nonce":"1"}`, 400, ""},
		{"missing_ticket", "GET", "/api/v1/status", "", ``, 401, "unauthorized"},
		{"forged_ticket", "GET", "/api/v1/status", forged, ``, 401, "unauthorized"},
		{"garbage_ticket", "GET", "/api/v1/status", "not.a.token", ``, 401, "unauthorized"},
		{"ticket_as_admission", "POST", "/api/v1/holds", j.Ticket, `{"section":"g1","quantity":1}`, 401, "unauthorized"},
		{"missing_admission", "POST", "/api/v1/holds", "", `{"section":"g1","quantity":1}`, 401, "unauthorized"},
		{"unknown_route", "GET", "/api/v1/nothing", "", ``, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, c.Base+tt.path, bytes.NewBufferString(tt.body))
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			req.Header.Set("User-Agent", "test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb wire.ErrorBody
			decodeErr := jsonDecode(resp, &eb)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d (%+v)", resp.StatusCode, tt.status, eb)
			}
			if decodeErr != nil || eb.Error.Message == "" {
				t.Errorf("body is not a JSON error with a message: %v %+v", decodeErr, eb)
			}
			if tt.code != "" && eb.Error.Code != tt.code {
				t.Errorf("code = %q, want %q", eb.Error.Code, tt.code)
			}
		})
	}
	t.Run("oversized_body", func(t *testing.T) {
		// Announce a body over the limit and send none: the edge must
		// answer from the headers alone. Sending the body too would race
		// the edge closing the connection, and the client could see a
		// reset instead of the answer.
		conn, err := net.Dial("tcp", strings.TrimPrefix(c.Base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "POST /api/v1/sales/%s/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", sale, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb wire.ErrorBody
		if err := jsonDecode(resp, &eb); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || eb.Error.Code != "invalid" || eb.Error.Message == "" {
			t.Errorf("oversized body: status %d, body %+v, %v; want 413 with a JSON error", resp.StatusCode, eb, err)
		}
	})

	// Nothing was lost: the fan still has their place.
	if st, err := c.Status(context.Background(), j.Ticket); err != nil || st.Position != 1 {
		t.Errorf("status after bad input = %+v, %v", st, err)
	}
}
