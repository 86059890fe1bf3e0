package coreapp

import (
	"context"
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
