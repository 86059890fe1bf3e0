package edgeapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/edge/lobby"
	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/wire"
)

// publish records a queue message on the sale's stream, as the core does.
func (sys *system) publish(m wire.QueueMsg) {
	sys.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := natsq.Publish(ctx, sys.js, sale, m, ""); err != nil {
		sys.t.Fatal(err)
	}
}

// TestJoin_singleUseCodeFromFiftySessions sends 50 joins with one
// single-use access code at once, across two edges, and checks that one
// gets a place in the presale lane and 49 get a conflict, and that they can
// still join the general lane without the code.
func TestJoin_singleUseCodeFromFiftySessions(t *testing.T) {
	sys := mustStartSystem(t)
	sys.publish(wire.QueueMsg{Kind: wire.KindLanes, Lanes: []wire.LaneConfig{{Name: "bank", Share: 30}}})
	sys.publish(wire.QueueMsg{Kind: wire.KindCodes, Codes: []wire.AccessCode{{Hash: wire.CodeHash(sale, "BANK-0001"), Lane: "bank", Uses: 1}}})
	edges := []string{sys.mustStartEdge("eu-south"), sys.mustStartEdge("eu-west")}
	ctx := context.Background()

	fans := make([]*fan, 50)
	reqs := make([]wire.JoinRequest, 50)
	for i := range fans {
		fans[i] = newFan(edges[i%2], fmt.Sprint("browser-", i))
		eventually.Check(t, 5*time.Second, func() error {
			var err error
			reqs[i], err = fans[i].solve(ctx)
			return err
		})
		reqs[i].Code = " bank-0001 " // codes are matched without case and spaces
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]error, 50)
	places := make([]*wire.JoinResponse, 50)
	for i := range fans {
		wg.Go(func() {
			<-start
			places[i], results[i] = fans[i].join(ctx, reqs[i], "")
		})
	}
	close(start)
	wg.Wait()

	placed, used := 0, 0
	for i, err := range results {
		var apiErr *client.APIError
		switch {
		case err == nil:
			placed++
			if places[i].Status.Lane != "bank" || places[i].Status.Position != 1 {
				t.Errorf("the placed fan got %+v, want position 1 in lane bank", places[i].Status)
			}
		case errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict && apiErr.Message == lobby.ErrCodeUsed.Message:
			used++
		default:
			t.Errorf("join %d with the code = %v", i, err)
		}
	}
	if placed != 1 || used != 49 {
		t.Fatalf("one single-use code from 50 sessions: %d placed, %d told it is used up; want 1 and 49", placed, used)
	}

	// A fan turned away joins the general lane without the code, and an
	// unknown code is rejected without publishing.
	for i, err := range results {
		if err == nil {
			continue
		}
		req, err := fans[i].solve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := fans[i].join(ctx, req, "")
		if err != nil || r.Status.Lane != wire.DefaultLane {
			t.Fatalf("join without the code after a conflict = %+v, %v; want a place in the general lane", r, err)
		}
		break
	}
	// Edges turn away joins with a code that their copy of the queue shows
	// used up, so fewer than 50 reached the stream; the stream decided the
	// rest.
	before := sys.joinCount()
	t.Logf("%d of 50 joins with the code reached the stream", before-1)
	req, err := fans[0].solve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req.Code = "NO-SUCH-CODE"
	_, err = newFan(edges[0], "guesser").join(ctx, req, "")
	mustAPIError(t, err, http.StatusNotFound, lobby.ErrCodeUnknown)
	if n := sys.joinCount(); n != before {
		t.Errorf("a join with an unknown code stored a message (%d joins, had %d)", n, before)
	}
}

// TestStatus_likelySoldOut publishes 100 places left with fans buying 2
// each, and checks that fans beyond position 50 are told the show will
// likely sell out before their turn, with another show that has places.
func TestStatus_likelySoldOut(t *testing.T) {
	sys := mustStartSystem(t)
	ctx := context.Background()
	kv, err := sys.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.StockBucket})
	if err != nil {
		t.Fatal(err)
	}
	put := func(st wire.Stock) {
		body, _ := json.Marshal(st)
		if _, err := kv.Put(ctx, st.Sale, body); err != nil {
			t.Fatal(err)
		}
	}
	put(wire.Stock{Sale: sale, Name: "LUX Madrid", Available: 100, PlacesPerFan: 2})
	put(wire.Stock{Sale: "lux-bcn-0413", Name: "LUX Barcelona", Available: 900, PlacesPerFan: 2})
	base := sys.mustStartEdge("eu-south")

	tickets := make([]string, 0, 55)
	for i := range 55 {
		var r *wire.JoinResponse
		eventually.Check(t, 5*time.Second, func() error {
			var err error
			r, err = newFan(base, fmt.Sprint("fan-", i)).solveAndJoin(ctx, "")
			return err
		})
		tickets = append(tickets, r.Ticket)
	}
	c := client.New(base, nil)
	status := func(position int) wire.Status {
		t.Helper()
		st, err := c.Status(ctx, tickets[position-1])
		if err != nil {
			t.Fatal(err)
		}
		if st.Position != position {
			t.Fatalf("fan %d has position %d", position, st.Position)
		}
		return st
	}
	eventually.Check(t, 5*time.Second, func() error {
		if st := status(51); !st.LikelySoldOut {
			return fmt.Errorf("position 51 with 100 places and 2 per fan is not told: %+v", st)
		}
		return nil
	})
	if st := status(50); st.LikelySoldOut || len(st.Alternatives) != 0 {
		t.Errorf("position 50 (49 ahead × 2 = 98 of 100 places) is told %+v, want no warning", st)
	}
	st := status(55)
	if !st.LikelySoldOut || len(st.Alternatives) != 1 || st.Alternatives[0].Sale != "lux-bcn-0413" || st.Alternatives[0].Available != 900 {
		t.Errorf("position 55 = %+v, want the warning with LUX Barcelona as another choice", st)
	}

	// Places come back: the warning goes away.
	put(wire.Stock{Sale: sale, Name: "LUX Madrid", Available: 400, PlacesPerFan: 2})
	eventually.Check(t, 5*time.Second, func() error {
		if st := status(55); st.LikelySoldOut {
			return fmt.Errorf("position 55 with 400 places left is still told it will sell out")
		}
		return nil
	})
}
