package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/natstest"
)

// testLeaseConfig expires a dead holder's key after 1.5 s, so takeovers
// in these tests take about two seconds.
func testLeaseConfig() LeaseConfig {
	return LeaseConfig{Bucket: "TEST_LEASES", TTL: 1500 * time.Millisecond, Renew: 500 * time.Millisecond, Replicas: 1}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustStartLease starts a lease on key for replica; it is closed when the
// test ends unless the test stops it first.
func mustStartLease(t *testing.T, ctx context.Context, js jetstream.JetStream, key, replica string) *Lease {
	t.Helper()
	l := NewLease(js, key, replica, testLeaseConfig(), testLogger(t))
	if err := l.Start(ctx); err != nil {
		t.Fatalf("start lease %s for %s: %v", key, replica, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func mustBucket(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), testLeaseConfig().Bucket)
	if err != nil {
		t.Fatalf("open lease bucket: %v", err)
	}
	return kv
}

// holders returns the leases that report Held, and fails the test when
// more than one does.
func holders(t *testing.T, leases ...*Lease) []*Lease {
	t.Helper()
	var held []*Lease
	for _, l := range leases {
		if l.Held() {
			held = append(held, l)
		}
	}
	if len(held) > 1 {
		t.Fatalf("%d leases held at once: %s and %s", len(held), held[0].Holder(), held[1].Holder())
	}
	return held
}

// waitHeld waits until l holds its lease, checking on every poll that no
// other lease does.
func waitHeld(t *testing.T, l *Lease, others ...*Lease) {
	t.Helper()
	eventually.Check(t, 10*time.Second, func() error {
		if held := holders(t, append(others, l)...); len(held) != 1 || held[0] != l {
			return fmt.Errorf("%s does not hold the lease", l.Holder())
		}
		return nil
	})
}

// currentValue returns the key's value and revision, or "" when absent.
func currentValue(t *testing.T, kv jetstream.KeyValue, key string) (string, uint64) {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", 0
	}
	if err != nil {
		t.Fatalf("get lease key %s: %v", key, err)
	}
	return string(e.Value()), e.Revision()
}

func TestLease_OneHolderAmongThree(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	ctx := t.Context()

	a := mustStartLease(t, ctx, js, "sale-1", "core-a")
	b := mustStartLease(t, ctx, js, "sale-1", "core-b")
	c := mustStartLease(t, ctx, js, "sale-1", "core-c")
	kv := mustBucket(t, js)

	var holder *Lease
	eventually.Check(t, 10*time.Second, func() error {
		held := holders(t, a, b, c)
		if len(held) == 0 {
			return errors.New("no lease held")
		}
		holder = held[0]
		return nil
	})
	value, firstRev := currentValue(t, kv, "sale-1")
	if value != holder.Holder() {
		t.Fatalf("lease key = %q, want the holder %q", value, holder.Holder())
	}

	// Through three renewals the same replica holds it and no other
	// replica reports it held.
	eventually.Check(t, 10*time.Second, func() error {
		held := holders(t, a, b, c)
		if len(held) != 1 || held[0] != holder {
			t.Fatalf("lease moved from %s without a failure", holder.Holder())
		}
		value, rev := currentValue(t, kv, "sale-1")
		if value != holder.Holder() {
			t.Fatalf("lease key = %q, want the holder %q", value, holder.Holder())
		}
		if rev < firstRev+3 {
			return fmt.Errorf("revision %d, want at least %d", rev, firstRev+3)
		}
		return nil
	})

	// A lease on another sale is independent.
	other := mustStartLease(t, ctx, js, "sale-2", "core-b")
	waitHeld(t, other)
}

func TestLease_CloseHandsOver(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	ctx := t.Context()

	a := mustStartLease(t, ctx, js, "sale-1", "core-a")
	waitHeld(t, a)
	b := mustStartLease(t, ctx, js, "sale-1", "core-b")

	if err := a.Close(); err != nil {
		t.Fatalf("close the holder: %v", err)
	}
	if a.Held() {
		t.Fatal("closed lease still reports held")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	waitHeld(t, b, a)
}

func TestLease_ExpiresWhenHolderDies(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)

	// The holder's context ends the way a killed process stops: no more
	// renewals and no delete.
	dying, die := context.WithCancel(t.Context())
	a := mustStartLease(t, dying, js, "sale-1", "core-a")
	waitHeld(t, a)
	b := mustStartLease(t, t.Context(), js, "sale-1", "core-b")
	kv := mustBucket(t, js)
	die()

	eventually.Check(t, 5*time.Second, func() error {
		if a.Held() {
			return errors.New("the dead holder still reports held")
		}
		return nil
	})
	waitHeld(t, b, a)

	// Closing the dead lease later must not delete the new holder's key.
	if err := a.Close(); err != nil {
		t.Fatalf("close the dead lease: %v", err)
	}
	if value, _ := currentValue(t, kv, "sale-1"); value != b.Holder() {
		t.Fatalf("after the dead lease closed, key = %q, want %q", value, b.Holder())
	}
	if !b.Held() {
		t.Fatal("new holder lost the lease when the dead one closed")
	}
}

func TestLease_AdoptsUpdateWithLostReply(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	a := mustStartLease(t, t.Context(), js, "sale-1", "core-a")
	waitHeld(t, a)
	kv := mustBucket(t, js)

	// Store the holder's own value at a newer revision, as an update whose
	// reply never arrived would have. The next renewal is rejected, and
	// the holder must keep the lease rather than give it up.
	_, rev := currentValue(t, kv, "sale-1")
	stored, err := kv.Update(t.Context(), "sale-1", []byte(a.Holder()), rev)
	if err != nil {
		t.Fatalf("update the key behind the holder's back: %v", err)
	}
	eventually.Check(t, 5*time.Second, func() error {
		value, rev := currentValue(t, kv, "sale-1")
		if value != a.Holder() {
			t.Fatalf("key = %q, want the holder %q", value, a.Holder())
		}
		if rev <= stored {
			return fmt.Errorf("revision %d, want a renewal after %d", rev, stored)
		}
		if !a.Held() {
			return errors.New("holder does not report held after renewing")
		}
		return nil
	})
}

func TestLease_LostToAnotherWriter(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	a := mustStartLease(t, t.Context(), js, "sale-1", "core-a")
	waitHeld(t, a)
	kv := mustBucket(t, js)

	// Someone else wrote the key: the holder must stop reporting held at
	// its next renewal, and take the lease again only after that key
	// expires.
	_, rev := currentValue(t, kv, "sale-1")
	if _, err := kv.Update(t.Context(), "sale-1", []byte("intruder"), rev); err != nil {
		t.Fatalf("overwrite the key: %v", err)
	}
	eventually.Check(t, 5*time.Second, func() error {
		if a.Held() {
			return errors.New("holder still reports held after its key was overwritten")
		}
		return nil
	})
	eventually.Check(t, 10*time.Second, func() error {
		held := a.Held()
		value, _ := currentValue(t, kv, "sale-1")
		if held && value != a.Holder() {
			t.Fatalf("holder reports held while the key is %q", value)
		}
		if value != a.Holder() {
			return fmt.Errorf("key = %q, want the holder to take it back after it expired", value)
		}
		if !held {
			return errors.New("holder does not report held")
		}
		return nil
	})
}

func TestLease_NotHeldWhenServerStops(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)
	a := mustStartLease(t, t.Context(), js, "sale-1", "core-a")
	waitHeld(t, a)

	srv.Shutdown()
	srv.WaitForShutdown()
	// The key would expire 1.5 s after the last renewal; the holder must
	// give up by then.
	eventually.Check(t, 5*time.Second, func() error {
		if a.Held() {
			return errors.New("lease still held with the server down")
		}
		return nil
	})
}

func TestLease_HeldUntilDeadline(t *testing.T) {
	cfg := testLeaseConfig()
	l := NewLease(nil, "sale-1", "core-a", cfg, testLogger(t))
	sent := time.Now()
	now := sent
	l.now = func() time.Time { return now }

	if l.Held() {
		t.Fatal("Held() = true before any renewal")
	}
	l.extend(sent)
	// The key lives at least TTL after the renewal was sent; Held keeps
	// one renewal interval of that as a margin.
	deadline := sent.Add(cfg.TTL - cfg.Renew)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"just_renewed", sent, true},
		{"before_deadline", deadline.Add(-time.Millisecond), true},
		{"at_deadline", deadline, false},
		{"key_expired", sent.Add(cfg.TTL), false},
	}
	for _, tt := range tests {
		now = tt.at
		if got := l.Held(); got != tt.want {
			t.Errorf("%s: Held() = %v, want %v", tt.name, got, tt.want)
		}
	}

	now = sent
	l.drop()
	if l.Held() {
		t.Error("Held() = true after a failed renewal")
	}
}

func TestLease_StartConfig(t *testing.T) {
	srv := natstest.Run(t)
	_, js := natstest.MustConnect(t, srv.URL)

	t.Run("err_ttl_too_short", func(t *testing.T) {
		cfg := testLeaseConfig()
		cfg.TTL = 2 * cfg.Renew
		l := NewLease(js, "sale-1", "core-a", cfg, testLogger(t))
		if err := l.Start(t.Context()); err == nil {
			_ = l.Close()
			t.Fatal("Start with a TTL of two renewal intervals succeeded, want an error")
		}
	})
	t.Run("bucket_settings", func(t *testing.T) {
		mustStartLease(t, t.Context(), js, "sale-1", "core-a")
		s, err := js.Stream(t.Context(), "KV_"+testLeaseConfig().Bucket)
		if err != nil {
			t.Fatalf("lease bucket stream: %v", err)
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxAge != testLeaseConfig().TTL {
			t.Errorf("bucket max age = %v, want the TTL %v", cfg.MaxAge, testLeaseConfig().TTL)
		}
		if cfg.Replicas != 1 {
			t.Errorf("bucket replicas = %d, want 1", cfg.Replicas)
		}
		if cfg.Storage != jetstream.FileStorage {
			t.Errorf("bucket storage = %v, want file", cfg.Storage)
		}
	})
}
