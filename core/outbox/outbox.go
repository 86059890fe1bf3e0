// Package outbox publishes the core's inventory events from the database's
// transactional outbox to a NATS JetStream stream. Each event is published
// with its id as the message id and marked published afterwards; a crash in
// between publishes it again, and JetStream drops the repeat within its
// duplicate window, so a consumer that also de-duplicates by id sees every
// change exactly once.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/wire"
)

// batch bounds the events one pass publishes.
const batch = 500

// EnsureStream creates or updates the inventory event stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        wire.EventStream,
		Description: "Taquilla inventory events: sales, releases, refunds",
		Subjects:    []string{wire.EventSubjects},
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		// Longer than any plausible gap between publishing an event and
		// marking it published, so a republished event is dropped.
		Duplicates: 30 * time.Minute,
		MaxAge:     30 * 24 * time.Hour,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", wire.EventStream, err)
	}
	return nil
}

// Publisher copies outbox rows to the event stream.
type Publisher struct {
	db    *postgres.DB
	js    jetstream.JetStream
	log   *slog.Logger
	every time.Duration

	nudge  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a publisher that looks for events every interval, and at once
// when nudged.
func New(db *postgres.DB, js jetstream.JetStream, every time.Duration, log *slog.Logger) *Publisher {
	return &Publisher{db: db, js: js, every: every, nudge: make(chan struct{}, 1),
		log: log.With(logkey.Component, "core.outbox")}
}

// Start runs the publisher until ctx ends or Close is called.
func (p *Publisher) Start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-p.nudge:
			}
			if _, err := p.PublishPending(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("outbox publish failed; will retry", logkey.Err, err)
			}
		}
	}()
}

// Nudge asks for a pass soon, after a transaction wrote events.
func (p *Publisher) Nudge() {
	select {
	case p.nudge <- struct{}{}:
	default:
	}
}

// Close stops the publisher and waits for it.
func (p *Publisher) Close() {
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

// PublishPending publishes every pending event, in batches, and returns how
// many it published.
func (p *Publisher) PublishPending(ctx context.Context) (int, error) {
	total := 0
	for {
		events, err := p.db.PendingEvents(ctx, batch)
		if err != nil || len(events) == 0 {
			return total, err
		}
		ids := make([]string, 0, len(events))
		for _, ev := range events {
			_, err := p.js.Publish(ctx, wire.EventSubject(ev.SaleID, ev.Kind), ev.Payload, jetstream.WithMsgID(ev.ID))
			if err != nil {
				// Mark what made it; the rest goes out on the next pass.
				if len(ids) > 0 {
					_ = p.db.MarkPublished(ctx, ids, time.Now())
				}
				return total + len(ids), fmt.Errorf("publish event %s: %w", ev.ID, err)
			}
			ids = append(ids, ev.ID)
		}
		if err := p.db.MarkPublished(ctx, ids, time.Now()); err != nil {
			return total, err
		}
		total += len(ids)
		if len(events) < batch {
			return total, nil
		}
	}
}
