package coreapp

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/taquilla/taquilla/core/control"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

var _ control.Backend = (*Core)(nil)

// SaleStatuses implements control.Backend.
func (c *Core) SaleStatuses(ctx context.Context) ([]wire.SaleStatus, error) {
	c.mu.Lock()
	ids := append([]string(nil), c.saleIDs...)
	c.mu.Unlock()
	out := make([]wire.SaleStatus, 0, len(ids))
	for _, id := range ids {
		st, err := c.SaleStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// SaleStatus implements control.Backend: the queue as this core sees it and
// the stock in the database.
func (c *Core) SaleStatus(ctx context.Context, saleID string) (wire.SaleStatus, error) {
	f := c.Follower(saleID)
	if f == nil {
		return wire.SaleStatus{}, waitroom.Errorf(waitroom.ENOTFOUND, "sale %q not found; taquilla ctl sales lists the sales", saleID)
	}
	c.mu.Lock()
	st := wire.SaleStatus{Sale: saleID, Name: c.saleNames[saleID]}
	c.mu.Unlock()
	now := time.Now()
	f.Do(func(q *queue.State) {
		stats := q.Stats(now)
		st.Control = q.Control()
		st.Waiting, st.Admitted, st.Shopping = stats.Waiting, stats.Admitted, stats.Shopping
		st.Left, st.Done, st.Closed, st.LastSeq = stats.Left, stats.Done, stats.Closed, stats.LastSeq
		st.NoShows = stats.NoShows
		st.AdmittedLastMinute = q.AdmittedSince(now.Add(-time.Minute))
		st.PreQueued, st.Rejected = stats.PreQueued, stats.Rejected
		if at, commitment, ok := q.Scheduled(); ok {
			st.OpensAt, st.Commitment = at, commitment
		}
		st.Lanes = laneStatuses(q)
	})
	stock, err := c.db.FindStock(ctx, saleID)
	if err != nil {
		return st, err
	}
	st.Available, st.Held, st.InCheckout, st.Sold = stock.Available, stock.Held, stock.Checkout, stock.Sold
	return st, nil
}

// RemoveSession implements control.Backend. A waiting fan leaves the queue
// and fans behind move up; an admitted fan's shopping slot ends.
func (c *Core) RemoveSession(ctx context.Context, saleID, session, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return waitroom.Errorf(waitroom.ENOTFOUND, "sale %q not found; taquilla ctl sales lists the sales", saleID)
	}
	state := queue.Unknown
	f.Do(func(q *queue.State) { state = q.Lookup(session, time.Now()).State })
	if state == queue.Unknown {
		return waitroom.Errorf(waitroom.ENOTFOUND, "no session %q in sale %q", session, saleID)
	}
	m := wire.QueueMsg{Kind: wire.KindLeave, Session: session, Reason: "removed", By: by}
	ack, err := natsq.Publish(ctx, c.js, saleID, m, "leave:"+session)
	if err != nil {
		return err
	}
	return f.WaitFor(ctx, ack.Sequence)
}

// laneStatuses lists the lanes of a queue: the configured ones and any
// with fans, general first.
func laneStatuses(q *queue.State) []wire.LaneStatus {
	shares := q.Shares()
	names := q.Lanes()
	for n := range shares {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	codes := make(map[string]int)
	uses := make(map[string]int)
	for h, used := range q.CodeUses() {
		lane, _, _ := q.CodeStatus(h)
		codes[lane]++
		uses[lane] += used
	}
	out := make([]wire.LaneStatus, 0, len(names))
	for _, n := range names {
		out = append(out, wire.LaneStatus{Name: n, Share: shares[n], Waiting: q.WaitingIn(n), PreQueued: q.PreQueuedIn(n), Codes: codes[n], CodeUses: uses[n]})
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == wire.DefaultLane) != (out[j].Name == wire.DefaultLane) {
			return out[i].Name == wire.DefaultLane
		}
		return out[i].Name < out[j].Name
	})
	return out
}
