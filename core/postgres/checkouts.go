package postgres

import (
	"sync"
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// checkoutCache remembers the checkouts this process started, with their
// pending payment, until they are paid, end or expire, so that paying one
// needs no read before the provider is charged. An entry is dropped when its
// checkout expires, which is when the sweeper may release the seats. An
// entry can still be stale when another core replica ended the checkout
// through a declined payment. The provider then returns the stored decline
// for the charge with the same idempotency key, and FinalizePayment changes
// nothing. In any other case the sale's statement finds the hold or payment
// in another state, and FinalizePayment refunds money taken for seats that
// went back on sale.
type checkoutCache struct {
	mu sync.Mutex // guards m
	m  map[string]*Started
}

// maxCheckouts bounds the cache; past it, expired entries go first and
// then arbitrary ones, which only cost a read when they are paid.
const maxCheckouts = 100_000

func (c *checkoutCache) put(st *Started) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*Started)
	}
	if len(c.m) >= maxCheckouts {
		now := time.Now()
		for id, x := range c.m {
			if len(c.m) < maxCheckouts/2 {
				break
			}
			if !now.Before(x.Hold.ExpiresAt) || len(c.m) >= maxCheckouts {
				delete(c.m, id)
			}
		}
	}
	c.m[st.Hold.ID] = st
}

// get returns a copy of the checkout of holdID if session owns it and it
// has not expired at now.
func (c *checkoutCache) get(holdID, session string, now time.Time) *Started {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[holdID]
	switch {
	case !ok:
		return nil
	case !now.Before(st.Hold.ExpiresAt):
		delete(c.m, holdID)
		return nil
	case st.Hold.Session != session:
		return nil
	}
	h, pay := *st.Hold, *st.Payment
	h.Seats = append([]waitroom.Seat(nil), st.Hold.Seats...)
	return &Started{Hold: &h, Payment: &pay}
}

// drop removes the checkout of holdID.
func (c *checkoutCache) drop(holdID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, holdID)
}
