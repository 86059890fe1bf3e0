package coreapp

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/wire"
)

// stockEvery is how often the core republishes what is left of each sale.
const stockEvery = time.Second

// stockBucket returns the stock KV bucket, creating it if needed. It keeps
// one value per sale: only the latest stock matters.
func stockBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      wire.StockBucket,
		Description: "Taquilla: places left per on-sale and price tier",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("stock bucket: %w", err)
	}
	return kv, nil
}

// publishStock puts each sale's stock in the stock bucket every second,
// when it changed, until ctx ends.
func (c *Core) publishStock(ctx context.Context, kv jetstream.KeyValue) {
	last := make(map[string]string)
	t := time.NewTicker(stockEvery)
	defer t.Stop()
	for {
		c.mu.Lock()
		ids := append([]string(nil), c.saleIDs...)
		c.mu.Unlock()
		for _, id := range ids {
			st, err := c.stock(ctx, id)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("stock not read", logkey.SaleID, id, logkey.Err, err)
				}
				continue
			}
			body, _ := json.Marshal(st)
			key := fmt.Sprint(st.Available, st.Tiers)
			if last[id] == key {
				continue
			}
			if _, err := kv.Put(ctx, id, body); err != nil {
				if ctx.Err() == nil {
					c.log.Warn("stock not published", logkey.SaleID, id, logkey.Err, err)
				}
				continue
			}
			last[id] = key
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stock reads what is left of a sale from its seat map.
func (c *Core) stock(ctx context.Context, saleID string) (wire.Stock, error) {
	m, err := c.Inventory.FindSeatMap(ctx, saleID)
	if err != nil {
		return wire.Stock{}, err
	}
	st := wire.Stock{V: wire.Version, Sale: saleID, PlacesPerFan: c.cfg.PlacesPerFan, UpdatedAt: time.Now().UTC()}
	c.mu.Lock()
	st.Name = c.saleNames[saleID]
	c.mu.Unlock()
	byTier := make(map[string]int)
	for _, s := range m.Sections {
		byTier[s.Tier] += s.Available
		st.Available += s.Available
	}
	for _, t := range m.Tiers {
		st.Tiers = append(st.Tiers, wire.TierStock{ID: t.ID, Name: t.Name, PriceCents: t.PriceCents, Available: byTier[t.ID]})
	}
	return st, nil
}
