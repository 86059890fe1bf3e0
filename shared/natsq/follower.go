package natsq

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// Follower reads a queue stream from its first message and applies every
// message to a queue.State in stream order. Edges answer positions from it;
// the core's admission controller decides from it.
type Follower struct {
	js     jetstream.JetStream
	saleID string
	log    *slog.Logger
	// OnApply, if set before Start, is called after each message is applied,
	// outside the lock, with the message and what it changed.
	OnApply func(seq uint64, m wire.QueueMsg, res queue.Result)

	mu        sync.Mutex // guards the fields below
	st        *queue.State
	lastMsgAt time.Time
	waiters   []waiter

	cancel context.CancelFunc
	done   chan struct{}
}

type waiter struct {
	seq uint64
	ch  chan struct{}
}

// NewFollower returns a Follower of saleID's queue whose state starts from
// initial settings until the stream's first control message.
func NewFollower(js jetstream.JetStream, saleID string, initial wire.Control, log *slog.Logger) *Follower {
	return &Follower{
		js:     js,
		saleID: saleID,
		log:    log.With(logkey.Component, "shared.natsq", logkey.SaleID, saleID),
		st:     queue.New(saleID, initial),
	}
}

// Start creates an ordered consumer from the stream's first message and
// applies messages until Close is called.
func (f *Follower) Start(ctx context.Context) error {
	cons, err := f.js.OrderedConsumer(ctx, wire.StreamName(f.saleID), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow queue %s: %w", f.saleID, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("follow queue %s: %w", f.saleID, err)
	}
	// ctx bounds the setup only; the follower runs until Close.
	ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f.done = make(chan struct{})
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	go f.run(ctx, it)
	return nil
}

func (f *Follower) run(ctx context.Context, it jetstream.MessagesContext) {
	defer close(f.done)
	for {
		// Stop alone does not always wake a Next that waits on a consumer
		// the ordered consumer has just replaced; the context does.
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				f.log.Error("queue follower stopped", logkey.Err, err)
			}
			return
		}
		f.apply(msg)
	}
}

func (f *Follower) apply(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		f.log.Error("queue message without metadata", logkey.Err, err)
		return
	}
	var m wire.QueueMsg
	if err := json.Unmarshal(msg.Data(), &m); err != nil {
		f.log.Warn("queue message skipped", logkey.Seq, meta.Sequence.Stream, logkey.Err, err)
		m = wire.QueueMsg{Kind: "invalid"}
	}
	if msg.Subject() != wire.QueueSubject(f.saleID, m.Kind) {
		// A kind must arrive on its own subject: the admit subject's
		// sequence is what keeps two controllers from admitting twice.
		m = wire.QueueMsg{Kind: "invalid"}
	}

	f.mu.Lock()
	res, err := f.st.Apply(meta.Sequence.Stream, meta.Timestamp, m)
	f.lastMsgAt = time.Now()
	f.wake(meta.Sequence.Stream)
	f.mu.Unlock()

	if err != nil {
		f.log.Warn("queue message skipped", logkey.Seq, meta.Sequence.Stream, logkey.Err, err)
		return
	}
	if f.OnApply != nil {
		f.OnApply(meta.Sequence.Stream, m, res)
	}
}

// wake releases waiters for sequences up to seq. f.mu must be held.
func (f *Follower) wake(seq uint64) {
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.seq <= seq {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	f.waiters = kept
}

// WaitFor blocks until the message with stream sequence seq is applied or
// ctx ends.
func (f *Follower) WaitFor(ctx context.Context, seq uint64) error {
	f.mu.Lock()
	if f.st.LastSeq() >= seq {
		f.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, waiter{seq: seq, ch: ch})
	f.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for queue seq %d: %w", seq, ctx.Err())
	}
}

// Do runs fn with the state locked. fn must not block or keep the state.
func (f *Follower) Do(fn func(st *queue.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.st)
}

// SaleID returns the on-sale this follower reads.
func (f *Follower) SaleID() string { return f.saleID }

// Close stops the follower and waits for it.
func (f *Follower) Close() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	<-f.done
}
