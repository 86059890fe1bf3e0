package edgeapp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/edge/lobby"
	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func (sys *system) mustIdentity(sub, aud string, issued, expires time.Time) string {
	sys.t.Helper()
	tok, err := identity.Sign(sys.promoter, identity.Claims{Issuer: "https://login.promoter.example", Subject: sub,
		Audience: []string{aud}, IssuedAt: issued, Expires: expires})
	if err != nil {
		sys.t.Fatal(err)
	}
	return tok
}

func account(sub string) string {
	return identity.Claims{Issuer: "https://login.promoter.example", Subject: sub}.Account()
}

// TestJoin_oneFanOnePlace joins one fan account from 20 browsers at once,
// each with its own connections and idempotency key, half through each of
// two edges: the account gets one place.
func TestJoin_oneFanOnePlace(t *testing.T) {
	sys := mustStartSystem(t)
	edges := []string{sys.mustStartEdge("madrid"), sys.mustStartEdge("barcelona")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()
	id := sys.mustIdentity("fan-1234", sale, now, now.Add(time.Hour))

	// Each browser solves its proof of work first; then all join at once.
	const browsers = 20
	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		results     = make([]*wire.JoinResponse, browsers)
		errs        = make([]error, browsers)
	)
	for i := range browsers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			f := newFan(edges[i%2], fmt.Sprintf("browser-%d", i))
			req, err := f.solve(ctx)
			ready.Done()
			if err != nil {
				errs[i] = err
				return
			}
			<-start
			results[i], errs[i] = f.join(ctx, req, id)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()

	want := lobby.FanSession(sale, account("fan-1234"))
	for i := range browsers {
		if errs[i] != nil {
			t.Fatalf("browser %d: join: %v", i, errs[i])
		}
		st := results[i].Status
		if st.Session != want || st.Position != 1 || st.State != "waiting" {
			t.Errorf("browser %d: status session %s, state %s, position %d; want session %s, waiting at 1", i, st.Session, st.State, st.Position, want)
		}
		c, err := sys.verifier.Verify(results[i].Ticket, token.KindTicket, time.Now())
		if err != nil {
			t.Fatalf("browser %d: ticket: %v", i, err)
		}
		if c.Session != want || c.Fan != account("fan-1234") {
			t.Errorf("browser %d: ticket session %s, fan %s; want %s, %s", i, c.Session, c.Fan, want, account("fan-1234"))
		}
	}
	if n := sys.joinCount(); n != 1 {
		t.Errorf("stream stores %d join messages, want 1", n)
	}
	for i, base := range edges {
		eventually.Check(t, 5*time.Second, func() error {
			info, err := salesInfo(ctx, base)
			if err != nil || info.Queue.Waiting != 1 {
				return fmt.Errorf("edge %d: sale %+v, %v; want 1 waiting", i, info.Queue, err)
			}
			return nil
		})
	}

	t.Run("other_account_queues_behind", func(t *testing.T) {
		r, err := newFan(edges[1], "other-browser").solveAndJoin(ctx, sys.mustIdentity("fan-5678", identity.AnySale, now, now.Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Session == want || r.Status.Position != 2 {
			t.Errorf("status session %s, position %d; want a new place at 2", r.Status.Session, r.Status.Position)
		}
	})

	t.Run("admission_token_carries_account", func(t *testing.T) {
		m := wire.QueueMsg{Kind: wire.KindAdmit, Lane: wire.DefaultLane, Count: 1, Batch: 1, Sessions: []string{want}}
		if _, err := natsq.Publish(ctx, sys.js, sale, m, ""); err != nil {
			t.Fatal(err)
		}
		c := client.New(edges[0], nil)
		var st wire.Status
		eventually.Check(t, 5*time.Second, func() error {
			var err error
			st, err = c.Status(ctx, results[0].Ticket)
			if err != nil || st.Admission == nil {
				return fmt.Errorf("status %+v, %v; want an admission", st, err)
			}
			return nil
		})
		claims, err := sys.verifier.Verify(st.Admission.Token, token.KindAdmit, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if claims.Fan != account("fan-1234") {
			t.Errorf("admission token fan = %q, want %q", claims.Fan, account("fan-1234"))
		}
	})
}

func TestJoin_badIdentity(t *testing.T) {
	sys := mustStartSystem(t)
	base := sys.mustStartEdge("madrid")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()

	forger, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := identity.Sign(forger, identity.Claims{Issuer: "https://login.promoter.example", Subject: "fan-1234",
		Audience: []string{sale}, IssuedAt: now, Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		identity string
		want     *waitroom.Error
	}{
		{"forged", forged, identity.ErrInvalid},
		{"expired", sys.mustIdentity("fan-1234", sale, now.Add(-3*time.Hour), now.Add(-2*time.Hour)), identity.ErrExpired},
		{"wrong_sale", sys.mustIdentity("fan-1234", "lux-bcn-0413", now, now.Add(time.Hour)), identity.ErrWrongSale},
		{"not_yet_valid", sys.mustIdentity("fan-1234", sale, now.Add(time.Hour), now.Add(2*time.Hour)), identity.ErrNotYetValid},
		{"garbage", "not-a-token", identity.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newFan(base, "browser-"+tt.name).solveAndJoin(ctx, tt.identity)
			mustAPIError(t, err, http.StatusUnauthorized, tt.want)
		})
	}

	t.Run("fan_prefixed_idempotency_key", func(t *testing.T) {
		_, err := newFan(base, "fan:"+account("fan-1234")).solveAndJoin(ctx, "")
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
			t.Fatalf("join = %v, want HTTP 400", err)
		}
	})

	if n := sys.joinCount(); n != 0 {
		t.Errorf("stream stores %d join messages after rejected joins, want 0", n)
	}
}

// TestJoin_identityRequiredToggle turns the requirement on and off through
// the control service and checks that both edges follow within a second.
func TestJoin_identityRequiredToggle(t *testing.T) {
	sys := mustStartSystem(t)
	edges := []string{sys.mustStartEdge("madrid"), sys.mustStartEdge("barcelona")}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now()

	if st := sys.setIdentityRequired(true); !st.Control.IdentityRequired {
		t.Fatalf("control status %+v, want identity required", st.Control)
	}
	for i, base := range edges {
		// Each edge follows the change within a second; only then is a
		// join without identity sure to be rejected, so the joins below
		// must all fail and store nothing.
		eventually.Check(t, time.Second, func() error {
			info, err := salesInfo(ctx, base)
			if err != nil || !info.Queue.IdentityRequired {
				return fmt.Errorf("edge %d: sale list %+v, %v; want identity_required", i, info.Queue, err)
			}
			return nil
		})
		_, err := newFan(base, fmt.Sprint("anonymous-", i)).solveAndJoin(ctx, "")
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Message != identity.ErrRequired.Message {
			t.Errorf("edge %d: join without identity = %v, want 401 %q", i, err, identity.ErrRequired.Message)
		}
	}
	if n := sys.joinCount(); n != 0 {
		t.Fatalf("stream stores %d join messages after joins without identity, want 0", n)
	}

	r, err := newFan(edges[1], "signed-in").solveAndJoin(ctx, sys.mustIdentity("fan-1", sale, now, now.Add(time.Hour)))
	if err != nil {
		t.Fatalf("join with identity while required: %v", err)
	}
	if r.Status.Session != lobby.FanSession(sale, account("fan-1")) {
		t.Errorf("session %s, want the account's", r.Status.Session)
	}

	sys.setIdentityRequired(false)
	for i, base := range edges {
		eventually.Check(t, time.Second, func() error {
			_, err := newFan(base, fmt.Sprint("anonymous-after-", i)).solveAndJoin(ctx, "")
			if err != nil {
				return fmt.Errorf("edge %d: join without identity = %v, want a place", i, err)
			}
			return nil
		})
	}
}

// mustAPIError fails unless err is an error response with status and
// want's code and message.
func mustAPIError(t *testing.T, err error, status int, want *waitroom.Error) {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("join = %v, want HTTP %d", err, status)
	}
	if apiErr.Status != status || apiErr.Code != want.Code || apiErr.Message != want.Message {
		t.Errorf("join = HTTP %d %s %q, want HTTP %d %s %q", apiErr.Status, apiErr.Code, apiErr.Message, status, want.Code, want.Message)
	}
}
