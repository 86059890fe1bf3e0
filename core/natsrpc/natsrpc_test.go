package natsrpc_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/natsrpc"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const sale = "t-1"

// store is a running inventory service on an embedded NATS server and a
// throwaway PostgreSQL database, with a client connection of its own, as an
// edge would have.
type store struct {
	t      *testing.T
	nc     *nats.Conn
	db     *postgres.DB
	signer *token.Signer
}

// startStore serves a show "t-1" with a standing section "ga" of 50 places,
// with a limit of maxTickets places per fan. The queue counts every session
// as admitted.
func startStore(t *testing.T, maxTickets int) *store {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := natstest.Run(t)

	db, err := postgres.Open(ctx, pgtest.Start(t), 20, log)
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(db.Close)
	if _, err := db.LoadCatalog(ctx, testCatalog()); err != nil {
		t.Fatalf("load catalog: %v", err)
	}

	cfg := inventory.DefaultConfig()
	cfg.MaxTickets = maxTickets
	inv := inventory.New(db, payments.NewSim(payments.SimConfig{}), cfg, log)
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	admitted := func(saleID, session string) string { return queue.Admitted }
	server := natsrpc.New(inv, token.NewVerifier(key.Public().(ed25519.PublicKey)), admitted, log)
	serverConn, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatalf("connect the service to nats: %v", err)
	}
	if err := server.Start(serverConn); err != nil {
		t.Fatalf("start service: %v", err)
	}
	t.Cleanup(func() {
		if err := server.Stop(); err != nil {
			t.Errorf("stop service: %v", err)
		}
		serverConn.Close()
	})

	nc, _ := natstest.MustConnect(t, srv.URL)
	return &store{t: t, nc: nc, db: db, signer: token.NewSigner(key)}
}

func testCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Tour: "Test",
		Venues: []catalog.Venue{{
			ID: "v", Name: "Venue", City: "Madrid",
			Tiers:    []catalog.Tier{{ID: "t", Name: "Tier", PriceCents: 5000}},
			Sections: []catalog.Section{{ID: "ga", Name: "Standing", Kind: "standing", Tier: "t", Capacity: 50}},
		}},
		Shows: []catalog.Show{{ID: sale, Venue: "v", Name: "Show", StartsAt: time.Date(2026, 3, 30, 21, 0, 0, 0, time.UTC)}},
	}
}

// admission returns an admission token of session, for the fan account fan
// when it is not empty.
func (s *store) admission(session, fan string) string {
	now := time.Now()
	c := token.NewAdmission(sale, session, now, now.Add(time.Hour))
	c.Fan = fan
	return s.signer.Sign(c)
}

// call sends one store request over NATS and decodes the reply into out.
func (s *store) call(subject string, req wire.StoreRequest, out any) error {
	s.t.Helper()
	req.V = wire.Version
	body, err := json.Marshal(req)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := s.nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		s.t.Fatalf("request %s: %v", subject, err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		s.t.Fatalf("decode reply to %s: %v", subject, err)
	}
	if err := reply.Err(); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Data, out)
}

// hold requests quantity standing places with tok.
func (s *store) hold(tok, key string, quantity int) (*waitroom.Hold, error) {
	s.t.Helper()
	var h waitroom.Hold
	err := s.call(wire.SubjectHold, wire.StoreRequest{Token: tok, IdempotencyKey: key, Section: "ga", Quantity: quantity}, &h)
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// tickets returns the ticket count of a fan account.
func (s *store) tickets(account string) int {
	s.t.Helper()
	var n int
	err := s.db.Pool.QueryRow(context.Background(), `SELECT tickets FROM fan_tickets WHERE sale_id = $1 AND fan = $2`, sale, account).Scan(&n)
	if err != nil {
		s.t.Fatalf("read ticket count of %s: %v", account, err)
	}
	return n
}

// TestServer_FanSharesLimitAcrossSessions sends holds through NATS with
// admission tokens of two sessions that name the same fan. They share one
// limit of 4, and a release gives the places back to that shared count.
// Each hold still belongs to the session that made it.
func TestServer_FanSharesLimitAcrossSessions(t *testing.T) {
	s := startStore(t, 4)
	phone := s.admission("phone", "fan-alice")
	laptop := s.admission("laptop", "fan-alice")

	first, err := s.hold(phone, "1", 3)
	if err != nil {
		t.Fatalf("phone holds 3: %v", err)
	}
	if _, err := s.hold(laptop, "1", 2); waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Fatalf("laptop holds 2 more of the same fan = %v, want the ticket limit (conflict)", err)
	}
	if _, err := s.hold(laptop, "2", 1); err != nil {
		t.Fatalf("laptop holds the fourth place: %v", err)
	}
	if got := s.tickets("fan-alice"); got != 4 {
		t.Errorf("fan-alice's ticket count = %d, want 4", got)
	}

	// Hold ownership stays with the session.
	err = s.call(wire.SubjectCheckout, wire.StoreRequest{Token: laptop, HoldID: first.ID}, nil)
	if waitroom.ErrorCode(err) != waitroom.ENOTFOUND {
		t.Errorf("laptop checks out the phone's hold = %v, want not_found", err)
	}

	if err := s.call(wire.SubjectRelease, wire.StoreRequest{Token: phone, HoldID: first.ID}, nil); err != nil {
		t.Fatalf("phone releases its hold: %v", err)
	}
	if got := s.tickets("fan-alice"); got != 1 {
		t.Errorf("fan-alice's ticket count after the release = %d, want 1", got)
	}
	if _, err := s.hold(laptop, "3", 3); err != nil {
		t.Errorf("laptop holds 3 after the phone released: %v", err)
	}
}

// TestServer_SessionsWithoutFanHaveOwnLimits sends holds through NATS with
// admission tokens of two sessions without a fan: each has its own limit
// of 4.
func TestServer_SessionsWithoutFanHaveOwnLimits(t *testing.T) {
	s := startStore(t, 4)
	a := s.admission("session-a", "")
	b := s.admission("session-b", "")

	if _, err := s.hold(a, "1", 4); err != nil {
		t.Fatalf("session-a holds 4: %v", err)
	}
	if _, err := s.hold(b, "1", 4); err != nil {
		t.Fatalf("session-b holds 4 next to session-a: %v", err)
	}
	if _, err := s.hold(a, "2", 1); waitroom.ErrorCode(err) != waitroom.ECONFLICT {
		t.Errorf("session-a holds a fifth place = %v, want the ticket limit (conflict)", err)
	}
	for _, account := range []string{"session:session-a", "session:session-b"} {
		if got := s.tickets(account); got != 4 {
			t.Errorf("ticket count of %s = %d, want 4", account, got)
		}
	}
}
