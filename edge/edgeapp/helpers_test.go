package edgeapp_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/core/control"
	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/edge/edgeapp"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

const sale = "lux-mad-0330"

// system is one NATS server with a sale's queue stream, the part of a core
// that edges talk to, and edges started on loopback.
type system struct {
	t        *testing.T
	url      string
	js       jetstream.JetStream
	signer   *token.Signer
	verifier *token.Verifier
	promoter ed25519.PrivateKey
	log      *slog.Logger
}

// mustStartSystem starts NATS, creates the sale's stream with its first
// settings and serves the sale list and the real control service, backed
// by the stream, as the core does.
func mustStartSystem(t *testing.T) *system {
	t.Helper()
	srv := natstest.Run(t)
	nc, js := natstest.MustConnect(t, srv.URL)
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	promoter, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	sys := &system{t: t, url: srv.URL, js: js, signer: token.NewSigner(key), verifier: token.NewVerifier(key.Public().(ed25519.PublicKey)),
		promoter: promoter, log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := natsq.EnsureStream(ctx, js, sale, natsq.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	initial := wire.Control{RatePerMinute: 60, Cap: 10, ShoppingSeconds: 600}
	if _, err := natsq.Publish(ctx, js, sale, wire.QueueMsg{Kind: wire.KindControl, Control: &initial, By: "test"}, ""); err != nil {
		t.Fatal(err)
	}

	sales, _ := json.Marshal([]waitroom.Sale{{ID: sale, Name: "LUX Madrid", StartsAt: time.Date(2026, 3, 30, 21, 0, 0, 0, time.UTC)}})
	sub, err := nc.Subscribe(wire.SubjectSales, func(m *nats.Msg) {
		body, _ := json.Marshal(wire.StoreReply{V: wire.Version, Data: sales})
		_ = m.Respond(body)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	f := natsq.NewFollower(js, sale, wire.Control{}, sys.log)
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctl := control.New(&streamBackend{js: js, f: f}, sys.log)
	if err := ctl.Start(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Stop() })
	return sys
}

// streamBackend is the part of the core's control.Backend that changes a
// sale's settings: it reads them from the stream and records changes on
// it, as the core does. Other methods are not used here and panic.
type streamBackend struct {
	control.Backend
	js jetstream.JetStream
	f  *natsq.Follower
}

func (b *streamBackend) SaleStatus(_ context.Context, saleID string) (wire.SaleStatus, error) {
	if saleID != sale {
		return wire.SaleStatus{}, waitroom.Errorf(waitroom.ENOTFOUND, "sale %q not found", saleID)
	}
	st := wire.SaleStatus{Sale: saleID}
	b.f.Do(func(q *queue.State) { st.Control = q.Control() })
	return st, nil
}

func (b *streamBackend) SetControl(ctx context.Context, saleID string, ctl wire.Control, by string) error {
	ack, err := natsq.Publish(ctx, b.js, saleID, wire.QueueMsg{Kind: wire.KindControl, Control: &ctl, By: by}, "")
	if err != nil {
		return err
	}
	return b.f.WaitFor(ctx, ack.Sequence)
}

// mustStartEdge starts an edge of region on a loopback port, verifying
// identities with the system's promoter key, and returns its base URL.
func (sys *system) mustStartEdge(region string) string {
	t := sys.t
	t.Helper()
	nc, err := nats.Connect(sys.url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := edgeapp.DefaultConfig()
	cfg.Region = region
	cfg.PoWKey = []byte("the test edges' proof-of-work key")
	cfg.HTTP.Difficulty = 4
	cfg.HTTP.PromoterKeys = []ed25519.PublicKey{sys.promoter.Public().(ed25519.PublicKey)}
	// Every test client comes from 127.0.0.1.
	cfg.Limits.PerAddr, cfg.Limits.BurstAddr, cfg.Limits.PerSubnet, cfg.Limits.BurstSubnet = 1000, 1000, 1000, 1000
	e, err := edgeapp.New(cfg, nc, sys.signer, sys.verifier, sys.log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx, ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return "http://" + ln.Addr().String()
}

// setIdentityRequired sends the control request of `taquilla ctl identity`.
func (sys *system) setIdentityRequired(required bool) wire.SaleStatus {
	t := sys.t
	t.Helper()
	nc, err := nats.Connect(sys.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	v := 0
	if required {
		v = 1
	}
	body, _ := json.Marshal(wire.ControlRequest{V: wire.Version, Sale: sale, Value: &v, By: "test-operator"})
	msg, err := nc.Request(wire.SubjectCtlIdentity, body, 5*time.Second)
	if err != nil {
		t.Fatalf("control request identity: %v", err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		t.Fatal(err)
	}
	if err := reply.Err(); err != nil {
		t.Fatalf("control request identity: %v", err)
	}
	var st wire.SaleStatus
	if err := json.Unmarshal(reply.Data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// joinCount returns how many join messages the sale's stream stores.
func (sys *system) joinCount() uint64 {
	t := sys.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := sys.js.Stream(ctx, wire.StreamName(sale))
	if err != nil {
		t.Fatal(err)
	}
	subject := wire.QueueSubject(sale, wire.KindJoin)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// fan is one browser: its own HTTP connections and idempotency key.
type fan struct {
	c   *client.Client
	key string
}

func newFan(base, key string) *fan {
	return &fan{c: client.New(base, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}), key: key}
}

// solve fetches a challenge and solves it, as the fan page does before
// sending the join.
func (f *fan) solve(ctx context.Context) (wire.JoinRequest, error) {
	var ch wire.Challenge
	if err := f.c.Do(ctx, http.MethodGet, "/api/v1/sales/"+sale+"/challenge", "", "", nil, &ch); err != nil {
		return wire.JoinRequest{}, err
	}
	return wire.JoinRequest{Challenge: ch.Challenge, Nonce: botfilter.Solve(ch.Challenge, ch.Difficulty)}, nil
}

// join sends a solved join with identity (which may be "").
func (f *fan) join(ctx context.Context, req wire.JoinRequest, identity string) (*wire.JoinResponse, error) {
	req.Identity = identity
	var r wire.JoinResponse
	if err := f.c.Do(ctx, http.MethodPost, "/api/v1/sales/"+sale+"/join", "", f.key, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// solveAndJoin does both steps.
func (f *fan) solveAndJoin(ctx context.Context, identity string) (*wire.JoinResponse, error) {
	req, err := f.solve(ctx)
	if err != nil {
		return nil, err
	}
	return f.join(ctx, req, identity)
}

// salesInfo returns the sale as an edge lists it.
func salesInfo(ctx context.Context, base string) (wire.SaleInfo, error) {
	sales, err := client.New(base, nil).Sales(ctx)
	if err != nil {
		return wire.SaleInfo{}, err
	}
	for _, s := range sales {
		if s.ID == sale {
			return s, nil
		}
	}
	return wire.SaleInfo{}, fmt.Errorf("sale %s not listed", sale)
}
