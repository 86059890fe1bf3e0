package lobby

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/wire"
)

// stockCache holds the latest stock of every sale.
type stockCache struct {
	stockMu sync.RWMutex
	stock   map[string]wire.Stock
}

// defaultPlacesPerFan is the estimate of places per fan when the core
// publishes none.
const defaultPlacesPerFan = 2.0

// watchStock follows the core's stock bucket until ctx ends, keeping the
// latest stock of every sale. The bucket may not exist yet when the edge
// starts before the core; the watch is retried.
func (l *Lobby) watchStock(ctx context.Context) {
	for ctx.Err() == nil {
		kv, err := l.js.KeyValue(ctx, wire.StockBucket)
		if err != nil {
			if !errors.Is(err, jetstream.ErrBucketNotFound) && ctx.Err() == nil {
				l.log.Debug("stock bucket not available", logkey.Err, err)
			}
			if !sleepCtx(ctx, retryEvery) {
				return
			}
			continue
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			if !sleepCtx(ctx, retryEvery) {
				return
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue // the initial values are all delivered
			}
			var st wire.Stock
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &st) != nil {
				continue
			}
			l.stockMu.Lock()
			l.stock[e.Key()] = st
			l.stockMu.Unlock()
			if l.OnChanged != nil {
				l.OnChanged(e.Key())
			}
		}
		_ = w.Stop()
	}
}

// Stock returns the latest stock of a sale the core published.
func (l *Lobby) Stock(saleID string) (wire.Stock, bool) {
	l.stockMu.RLock()
	defer l.stockMu.RUnlock()
	st, ok := l.stock[saleID]
	return st, ok
}

// likelySoldOut reports whether a fan with ahead fans in front is likely
// to find the show sold out: when the fans ahead, buying the expected
// places each, would take every place left.
//
// NOTE: fans already shopping are not counted, so the estimate errs on
// the hopeful side while many fans shop at once.
func likelySoldOut(st wire.Stock, ahead int) bool {
	per := st.PlacesPerFan
	if per <= 0 {
		per = defaultPlacesPerFan
	}
	return float64(ahead)*per >= float64(st.Available)
}

// alternatives returns the other sales with places left, most first.
func (l *Lobby) alternatives(saleID string) []wire.SaleChoice {
	l.stockMu.RLock()
	var out []wire.SaleChoice
	for id, st := range l.stock {
		if id != saleID && st.Available > 0 {
			out = append(out, wire.SaleChoice{Sale: id, Name: st.Name, Available: st.Available})
		}
	}
	l.stockMu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Available != out[j].Available {
			return out[i].Available > out[j].Available
		}
		return out[i].Sale < out[j].Sale
	})
	return out
}

// retryEvery is how long the stock watch waits before trying again.
const retryEvery = 2 * time.Second

// sleepCtx waits d, and reports false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
