package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// publishSale publishes a scheduled sale's stream: 30 joins in the
// pre-queue, the opening with seed, five late joins, and admit messages
// that list the fans first in line; tamper may change any message before
// it is published.
func publishSale(t *testing.T, js jetstream.JetStream, sale string, seed []byte, tamper func(*wire.QueueMsg)) {
	t.Helper()
	ctx := context.Background()
	if _, err := natsq.EnsureStream(ctx, js, sale, natsq.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	local := queue.New(sale, wire.Control{})
	seq := uint64(0)
	pub := func(m wire.QueueMsg) {
		t.Helper()
		if tamper != nil {
			tamper(&m)
		}
		ack, err := natsq.Publish(ctx, js, sale, m, "")
		if err != nil {
			t.Fatal(err)
		}
		seq = ack.Sequence
		if _, err := local.Apply(seq, time.Now(), m); err != nil {
			t.Fatalf("apply %s: %v", m.Kind, err)
		}
	}
	pub(wire.QueueMsg{Kind: wire.KindSchedule, OpensAt: time.Now().Add(time.Hour), Commitment: queue.Commitment(seed)})
	for i := range 30 {
		pub(wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprintf("s%02d", i)})
	}
	pub(wire.QueueMsg{Kind: wire.KindOpen, Seed: hex.EncodeToString(seed)})
	for i := range 5 {
		pub(wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprintf("late%d", i)})
	}
	for batch := uint64(1); batch <= 7; batch++ {
		next := local.NextWaiting(wire.DefaultLane, 5)
		pub(wire.QueueMsg{Kind: wire.KindAdmit, Lane: wire.DefaultLane, Count: len(next), Sessions: next, Batch: batch})
	}
}

func verify(t *testing.T, url, sale string, extra ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	args := append([]string{"-nats", url}, extra...)
	err := runVerify(context.Background(), append(args, sale), func(string) string { return "" }, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestVerify_FairStream(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	seed := bytes.Repeat([]byte{0x5a}, 32)
	publishSale(t, js, "fair", seed, nil)

	out, err := verify(t, srv.URL, "fair")
	if err != nil {
		t.Fatalf("verify of a fair stream: %v\n%s", err, out)
	}
	if !strings.Contains(out, "hashes to the commitment") || !strings.Contains(out, "30 pre-queued") || !strings.HasSuffix(strings.TrimSpace(out), "verified") {
		t.Errorf("verify output lacks the checks:\n%s", out)
	}

	// Two replicas following the same stream place the pre-queue alike.
	var orders [][]string
	for range 2 {
		f := natsq.NewFollower(js, "fair", wire.Control{}, slog.New(slog.DiscardHandler))
		if err := f.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := f.WaitFor(ctx, 43); err != nil {
			t.Fatal(err)
		}
		cancel()
		f.Do(func(st *queue.State) { orders = append(orders, st.Audit().Rounds[0].Order) })
	}
	if len(orders[0]) != 30 || !slices.Equal(orders[0], orders[1]) {
		t.Errorf("replicas placed the pre-queue differently:\n%v\n%v", orders[0], orders[1])
	}
	out, _ = verify(t, srv.URL, "fair", "-order")
	if !strings.Contains(out, strings.Join(orders[0], "\n")) {
		t.Errorf("verify -order does not print the replicas' order:\n%s", out)
	}
}

func TestVerify_TamperedSeedFails(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	seed := bytes.Repeat([]byte{0x5a}, 32)
	other := hex.EncodeToString(bytes.Repeat([]byte{0x5b}, 32))
	publishSale(t, js, "tampered", seed, func(m *wire.QueueMsg) {
		if m.Kind == wire.KindOpen {
			m.Seed = other // a seed chosen after the joins
		}
	})
	out, err := verify(t, srv.URL, "tampered")
	if !errors.Is(err, errUnfair) || !strings.Contains(out, "does NOT hash") {
		t.Errorf("verify of a stream with a swapped seed: err %v, output:\n%s", err, out)
	}
}

func TestVerify_ReorderedAdmissionFails(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	seed := bytes.Repeat([]byte{0x5a}, 32)
	publishSale(t, js, "reordered", seed, func(m *wire.QueueMsg) {
		if m.Kind == wire.KindAdmit && m.Batch == 3 {
			m.Sessions = []string{"late4"} // a late joiner let in ahead of the line
			m.Count = 1
		}
	})
	out, err := verify(t, srv.URL, "reordered")
	if !errors.Is(err, errUnfair) || !strings.Contains(out, "late4 admitted while") {
		t.Errorf("verify of a stream with a reordered admission: err %v, output:\n%s", err, out)
	}
}
