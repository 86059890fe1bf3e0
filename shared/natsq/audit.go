package natsq

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// Audit replays a sale's queue stream from its first message to its last
// into a fresh queue.State, applying the same rules as every replica, and
// returns the fairness record. stream, when not empty, names another
// stream holding the sale's messages (a copy); then subjects are not
// checked.
func Audit(ctx context.Context, js jetstream.JetStream, saleID, stream string) (queue.Audit, error) {
	name := stream
	if name == "" {
		name = wire.StreamName(saleID)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return queue.Audit{}, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return queue.Audit{}, fmt.Errorf("stream info of %s: %w", name, err)
	}
	st := queue.New(saleID, wire.Control{})
	last := info.State.LastSeq
	if last == 0 {
		return st.Audit(), nil
	}
	cons, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return queue.Audit{}, fmt.Errorf("read %s: %w", name, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return queue.Audit{}, fmt.Errorf("read %s: %w", name, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return queue.Audit{}, fmt.Errorf("read %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return queue.Audit{}, fmt.Errorf("read %s: %w", name, err)
		}
		var m wire.QueueMsg
		if err := json.Unmarshal(msg.Data(), &m); err != nil || (stream == "" && msg.Subject() != wire.QueueSubject(saleID, m.Kind)) {
			m = wire.QueueMsg{Kind: "invalid"}
		}
		// A message the rules skip is skipped by every replica too, so the
		// audit skips it the same way.
		_, _ = st.Apply(meta.Sequence.Stream, meta.Timestamp, m)
		if meta.Sequence.Stream >= last {
			return st.Audit(), nil
		}
	}
}
