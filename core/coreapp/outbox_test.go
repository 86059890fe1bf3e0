package coreapp_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/outbox"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// streamEvents reads the whole event stream and counts events by kind,
// failing on a repeated id.
func streamEvents(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, wire.EventStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, wire.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	seen := map[string]bool{}
	for n := uint64(0); n < info.State.Msgs; n++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read event %d of %d: %v", n+1, info.State.Msgs, err)
		}
		var ev wire.InventoryEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatal(err)
		}
		if seen[ev.ID] {
			t.Errorf("event %s on the stream twice", ev.ID)
		}
		seen[ev.ID] = true
		kinds[ev.Kind]++
	}
	return kinds
}

// TestCore_OutboxOncePerChange sells, releases and declines, then makes
// the publisher publish everything again as if it had crashed before
// marking the events published: the stream still holds each change once.
func TestCore_OutboxOncePerChange(t *testing.T) {
	h := newHarness(t)
	r := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer r.stop()
	ctx := context.Background()
	inv := r.core.Inventory

	buyOne := func(session, card string) *waitroom.PayResult {
		hold, err := inv.Hold(ctx, waitroom.HoldRequest{SaleID: sale, Session: session, IdempotencyKey: "k", Section: "g1", Quantity: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := inv.Checkout(ctx, hold.ID, session); err != nil {
			t.Fatal(err)
		}
		res, err := inv.Pay(ctx, waitroom.PayRequest{HoldID: hold.ID, Session: session, Card: card})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := range 5 {
		buyOne(fmt.Sprint("buyer-", i), "4242424242424242")
	}
	buyOne("declined", payments.DeclineCard)
	hold, err := inv.Hold(ctx, waitroom.HoldRequest{SaleID: sale, Session: "leaver", IdempotencyKey: "k", Section: "pista", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Release(ctx, hold.ID, "leaver"); err != nil {
		t.Fatal(err)
	}

	_, js := natstest.MustConnect(t, h.url)
	want := map[string]int{wire.EventSold: 5, wire.EventReleased: 2}
	eventually.Check(t, 10*time.Second, func() error {
		if got := streamEvents(t, js); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("stream has %v, want %v", got, want)
		}
		return nil
	})

	// A crash between publishing and marking: everything goes out again.
	if _, err := r.db.Pool.Exec(ctx, `UPDATE outbox SET published_at = NULL`); err != nil {
		t.Fatal(err)
	}
	p := outbox.New(r.db, js, time.Hour, h.log)
	n, err := p.PublishPending(ctx)
	if err != nil || n != 7 {
		t.Fatalf("republished %d events, %v; want 7", n, err)
	}
	if got := streamEvents(t, js); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after republishing, stream has %v, want %v", got, want)
	}
	var pending int
	if err := r.db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("unpublished events left: %d, %v", pending, err)
	}
}
