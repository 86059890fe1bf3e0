package launch_test

import (
	"github.com/taquilla/taquilla/shared/eventually"

	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/deploy/launch"
	"github.com/taquilla/taquilla/edge/edgeapp"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/wire"
)

// mustSecondEdge starts another edge on the same NATS server, as a second
// region's edge would be, and returns its client.
func mustSecondEdge(t *testing.T, sys *launch.System) *client.Client {
	t.Helper()
	nc, err := nats.Connect(sys.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := edgeapp.DefaultConfig()
	cfg.Region = "second"
	cfg.PoWKey = []byte("a second edge's proof-of-work key")
	cfg.Limits.PerAddr, cfg.Limits.BurstAddr, cfg.Limits.PerSubnet, cfg.Limits.BurstSubnet = 1000, 1000, 1000, 1000
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := edgeapp.New(cfg, nc, sys.Signer, token.NewVerifier(sys.Signer.PublicKey()), log)
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
	return client.New("http://"+ln.Addr().String(), nil)
}

// ctl sends one control request as `taquilla ctl` does.
func ctl(t *testing.T, sys *launch.System, subject string, req wire.ControlRequest) (wire.SaleStatus, error) {
	t.Helper()
	nc, err := nats.Connect(sys.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req.V = wire.Version
	if req.By == "" {
		req.By = "test-operator"
	}
	body, _ := json.Marshal(req)
	msg, err := nc.Request(subject, body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		t.Fatal(err)
	}
	var st wire.SaleStatus
	if err := reply.Err(); err != nil {
		return st, err
	}
	return st, json.Unmarshal(reply.Data, &st)
}

func intp(v int) *int { return &v }

// within checks cond every 25 ms and fails unless it holds within a second.
func within(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a second: %v", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestControl_ChangesReachEveryEdge(t *testing.T) {
	sys, first := mustStart(t, 0, 100)
	second := mustSecondEdge(t, sys)
	ctx := context.Background()
	edges := []*client.Client{first, second}
	var tickets []string
	for i, c := range edges {
		j, err := c.Join(ctx, sale, fmt.Sprint("fan-", i))
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, j.Ticket)
	}

	t.Run("pause", func(t *testing.T) {
		if _, err := ctl(t, sys, wire.SubjectCtlPause, wire.ControlRequest{Sale: sale}); err != nil {
			t.Fatal(err)
		}
		for i, c := range edges {
			within(t, fmt.Sprint("edge ", i, " shows paused"), func() error {
				st, err := c.Status(ctx, tickets[i])
				if err != nil || !st.Paused {
					return fmt.Errorf("status %+v, %v", st, err)
				}
				return nil
			})
		}
	})

	t.Run("pow", func(t *testing.T) {
		if _, err := ctl(t, sys, wire.SubjectCtlPoW, wire.ControlRequest{Sale: sale, Value: intp(9)}); err != nil {
			t.Fatal(err)
		}
		for i, c := range edges {
			within(t, fmt.Sprint("edge ", i, " asks 9 bits"), func() error {
				var ch wire.Challenge
				if err := c.Do(ctx, "GET", "/api/v1/sales/"+sale+"/challenge", "", "", nil, &ch); err != nil || ch.Difficulty != 9 {
					return fmt.Errorf("challenge %+v, %v", ch, err)
				}
				return nil
			})
		}
	})

	t.Run("remove", func(t *testing.T) {
		st0, err := first.Status(ctx, tickets[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctl(t, sys, wire.SubjectCtlRemove, wire.ControlRequest{Sale: sale, Session: st0.Session}); err != nil {
			t.Fatal(err)
		}
		for i, c := range edges {
			within(t, fmt.Sprint("edge ", i, " moved the next fan up"), func() error {
				st, err := c.Status(ctx, tickets[1])
				if err != nil || st.Position != 1 {
					return fmt.Errorf("second fan %+v, %v", st, err)
				}
				return nil
			})
		}
	})

	t.Run("rate_and_resume", func(t *testing.T) {
		if _, err := ctl(t, sys, wire.SubjectCtlRate, wire.ControlRequest{Sale: sale, Value: intp(600)}); err != nil {
			t.Fatal(err)
		}
		st, err := ctl(t, sys, wire.SubjectCtlResume, wire.ControlRequest{Sale: sale})
		if err != nil || st.Control.RatePerMinute != 600 || st.Control.Paused {
			t.Fatalf("after rate and resume: %+v, %v", st.Control, err)
		}
		for i, c := range edges {
			within(t, fmt.Sprint("edge ", i, " admits"), func() error {
				st, err := c.Status(ctx, tickets[1])
				if err != nil || st.State != "admitted" {
					return fmt.Errorf("status %+v, %v", st, err)
				}
				return nil
			})
		}
	})

	t.Run("invalid_changes_nothing", func(t *testing.T) {
		before, err := ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
		if err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name    string
			subject string
			req     wire.ControlRequest
		}{
			{"negative_rate", wire.SubjectCtlRate, wire.ControlRequest{Sale: sale, Value: intp(-5)}},
			{"missing_value", wire.SubjectCtlCap, wire.ControlRequest{Sale: sale}},
			{"difficulty_too_high", wire.SubjectCtlPoW, wire.ControlRequest{Sale: sale, Value: intp(40)}},
			{"unknown_sale", wire.SubjectCtlPause, wire.ControlRequest{Sale: "no-such-show"}},
			{"unknown_session", wire.SubjectCtlRemove, wire.ControlRequest{Sale: sale, Session: "s_nobody"}},
		}
		for _, b := range bad {
			if _, err := ctl(t, sys, b.subject, b.req); err == nil {
				t.Errorf("%s: accepted", b.name)
			} else if err.Error() == "" {
				t.Errorf("%s: empty error message", b.name)
			}
		}
		if _, err := ctlNoDefault(t, sys, wire.SubjectCtlPause, wire.ControlRequest{Sale: sale}); err == nil {
			t.Errorf("a change without an operator name was accepted")
		}
		after, err := ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
		if err != nil {
			t.Fatal(err)
		}
		b1, _ := json.Marshal(before.Control)
		b2, _ := json.Marshal(after.Control)
		if string(b1) != string(b2) || before.LastSeq != after.LastSeq {
			t.Errorf("invalid requests changed the sale: %+v → %+v", before, after)
		}
	})
}

// ctlNoDefault sends a control request as it is, without an operator
// name filled in.
func ctlNoDefault(t *testing.T, sys *launch.System, subject string, req wire.ControlRequest) (wire.SaleStatus, error) {
	t.Helper()
	nc, err := nats.Connect(sys.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req.V = wire.Version
	body, _ := json.Marshal(req)
	msg, err := nc.Request(subject, body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		t.Fatal(err)
	}
	return wire.SaleStatus{}, reply.Err()
}

// TestSystem_NoShowSlotReclaimed admits one fan at a time (cap 1): the
// first fan never comes to the store, and once its arrival window passes
// the next fan is admitted.
func TestSystem_NoShowSlotReclaimed(t *testing.T) {
	sys, c := mustStart(t, 0, 1)
	ctx := context.Background()
	first := mustJoin(t, c, "no-show")
	second := mustJoin(t, c, "next")
	if _, err := ctl(t, sys, wire.SubjectCtlRate, wire.ControlRequest{Sale: sale, Value: intp(600)}); err != nil {
		t.Fatal(err)
	}
	st, err := ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
	if err != nil {
		t.Fatal(err)
	}
	ctlArrival := st.Control
	ctlArrival.ArrivalSeconds = 1
	if err := sys.SetControl(ctx, sale, ctlArrival, "test"); err != nil {
		t.Fatal(err)
	}
	eventually.Check(t, 5*time.Second, func() error {
		s, err := c.Status(ctx, first.Ticket)
		if err != nil || s.State != "admitted" {
			return fmt.Errorf("first fan %+v, %v", s, err)
		}
		return nil
	})
	// The first fan makes no store request; the second gets the slot.
	eventually.Check(t, 10*time.Second, func() error {
		s, err := c.Status(ctx, second.Ticket)
		if err != nil || s.State != "admitted" {
			return fmt.Errorf("second fan %+v, %v", s, err)
		}
		return nil
	})
	if s, err := c.Status(ctx, first.Ticket); err != nil || s.State != "done" {
		t.Errorf("no-show = %+v, %v; want done", s, err)
	}
	st, err = ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
	if err != nil || st.Admitted != 2 {
		t.Errorf("stats = %+v, %v; want 2 admitted", st, err)
	}
}
