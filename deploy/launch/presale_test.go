package launch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/shared/wire"
)

// joinWithCode solves the proof of work and joins with an access code.
func joinWithCode(ctx context.Context, c *client.Client, key, code string) (*wire.JoinResponse, error) {
	var ch wire.Challenge
	if err := c.Do(ctx, http.MethodGet, "/api/v1/sales/"+sale+"/challenge", "", "", nil, &ch); err != nil {
		return nil, err
	}
	req := wire.JoinRequest{Challenge: ch.Challenge, Nonce: botfilter.Solve(ch.Challenge, ch.Difficulty), Code: code}
	var r wire.JoinResponse
	if err := c.Do(ctx, http.MethodPost, "/api/v1/sales/"+sale+"/join", "", key, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// TestControl_PresaleReachesEveryEdge runs a presale through the control
// service with two edges: each change (schedule, lane and codes, open,
// automatic rate) shows at both edges within a second, and invalid
// requests get errors and change nothing.
func TestControl_PresaleReachesEveryEdge(t *testing.T) {
	sys, first := mustStart(t, 600, 100)
	second := mustSecondEdge(t, sys)
	ctx := context.Background()
	edges := []*client.Client{first, second}

	if _, err := ctl(t, sys, wire.SubjectCtlSchedule, wire.ControlRequest{Sale: sale, At: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	tickets := make([]string, len(edges))
	for i, c := range edges {
		attempt := 0
		within(t, fmt.Sprint("edge ", i, " puts a new fan in the pre-queue"), func() error {
			// A new key each time: a fan who joined before this edge saw
			// the schedule keeps a place in the open queue.
			attempt++
			r, err := c.Join(ctx, sale, fmt.Sprint("early-", i, "-", attempt))
			if err != nil || r.Status.State != "prequeue" || r.Status.OpensAt.IsZero() {
				return fmt.Errorf("join = %+v, %v", r, err)
			}
			tickets[i] = r.Ticket
			return nil
		})
	}

	if _, err := ctl(t, sys, wire.SubjectCtlLane, wire.ControlRequest{Sale: sale, Lane: "bank", Value: intp(30)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ctl(t, sys, wire.SubjectCtlCodes, wire.ControlRequest{Sale: sale, Lane: "bank", Value: intp(2),
		Codes: []string{wire.CodeHash(sale, "BANK-1")}}); err != nil {
		t.Fatal(err)
	}
	for i, c := range edges {
		within(t, fmt.Sprint("edge ", i, " takes the code"), func() error {
			r, err := joinWithCode(ctx, c, fmt.Sprint("bank-fan-", i), "bank-1")
			if err != nil || r.Status.Lane != "bank" {
				return fmt.Errorf("join with the code = %+v, %v", r, err)
			}
			return nil
		})
	}
	_, err := joinWithCode(ctx, first, "bank-fan-3", "BANK-1")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Errorf("a third use of a two-use code = %v, want 409", err)
	}

	before, err := ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		subject string
		req     wire.ControlRequest
	}{
		{"share_over_100", wire.SubjectCtlLane, wire.ControlRequest{Sale: sale, Lane: "access", Value: intp(90)}},
		{"codes_without_lane", wire.SubjectCtlCodes, wire.ControlRequest{Sale: sale, Lane: "nope", Value: intp(1), Codes: []string{wire.CodeHash(sale, "X")}}},
		{"opening_in_the_past", wire.SubjectCtlSchedule, wire.ControlRequest{Sale: sale, At: time.Now().Add(-time.Hour)}},
		{"auto_min_over_max", wire.SubjectCtlAuto, wire.ControlRequest{Sale: sale, Value: intp(500), Max: intp(100)}},
		{"unknown_sale", wire.SubjectCtlOpen, wire.ControlRequest{Sale: "no-such-show"}},
	}
	for _, b := range bad {
		if _, err := ctl(t, sys, b.subject, b.req); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	after, err := ctl(t, sys, wire.SubjectCtlStats, wire.ControlRequest{Sale: sale})
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := json.Marshal(before.Control)
	b2, _ := json.Marshal(after.Control)
	if string(b1) != string(b2) || before.LastSeq != after.LastSeq {
		t.Errorf("invalid requests changed the sale: seq %d → %d", before.LastSeq, after.LastSeq)
	}

	// At the opening the pre-queue is drawn and admitted at the rate.
	if _, err := ctl(t, sys, wire.SubjectCtlOpen, wire.ControlRequest{Sale: sale}); err != nil {
		t.Fatal(err)
	}
	for i, c := range edges {
		within(t, fmt.Sprint("edge ", i, " shows the pre-queued fan placed"), func() error {
			st, err := c.Status(ctx, tickets[i])
			if err != nil || st.State == "prequeue" {
				return fmt.Errorf("status %+v, %v", st, err)
			}
			return nil
		})
	}

	st, err := ctl(t, sys, wire.SubjectCtlAuto, wire.ControlRequest{Sale: sale, Value: intp(100), Max: intp(300)})
	if err != nil || st.Control.AutoMin != 100 || st.Control.AutoMax != 300 || st.Control.RatePerMinute != 300 {
		t.Errorf("after auto 100 300: %+v, %v; want the rate clamped to 300 with the bounds set", st.Control, err)
	}
}
