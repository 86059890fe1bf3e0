// Package natsq connects the queue state machine to JetStream: it creates an
// on-sale's queue stream, publishes queue messages with the ids that make
// retries harmless, and feeds the stream, in order, into a queue.State.
package natsq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/wire"
)

// StreamOptions configures a queue stream.
type StreamOptions struct {
	// Replicas is the JetStream replication factor (1 on one node, 3 in a
	// cluster).
	Replicas int
	// Duplicates is the message-id window; joins retried within it are
	// dropped by JetStream, and the queue drops later repeats by session.
	Duplicates time.Duration
}

// EnsureStream creates the queue stream of saleID, or updates its settings
// when it exists. File storage: a queue must survive a restart.
func EnsureStream(ctx context.Context, js jetstream.JetStream, saleID string, opts StreamOptions) (jetstream.Stream, error) {
	if !wire.ValidSaleID(saleID) {
		return nil, fmt.Errorf("ensure stream: invalid sale id %q", saleID)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 1
	}
	if opts.Duplicates <= 0 {
		opts.Duplicates = 10 * time.Minute
	}
	cfg := jetstream.StreamConfig{
		Name:        wire.StreamName(saleID),
		Description: "Taquilla queue of on-sale " + saleID,
		Subjects:    []string{wire.QueueSubjects(saleID)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    opts.Replicas,
		Duplicates:  opts.Duplicates,
		Discard:     jetstream.DiscardOld,
		// 64 KiB bounds every queue message: an admit batch lists at most
		// wire.MaxAdmitSessions sessions, a codes message as many codes.
		MaxMsgSize: 64 << 10,
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// Publish publishes m on its sale's subject and waits for the stream's
// acknowledgement, which comes only after the message is stored (and, on a
// cluster, replicated). msgID, when not empty, de-duplicates retries.
func Publish(ctx context.Context, js jetstream.JetStream, saleID string, m wire.QueueMsg, msgID string, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	m.V = wire.Version
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Kind, err)
	}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.Publish(ctx, wire.QueueSubject(saleID, m.Kind), body, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish %s to %s: %w", m.Kind, saleID, err)
	}
	return ack, nil
}

// Join publishes a fan's join. The message id is the session, so a retry
// within the duplicate window stores nothing new; later repeats are dropped
// by the queue itself.
func Join(ctx context.Context, js jetstream.JetStream, saleID, session, lane, region string) (*jetstream.PubAck, error) {
	return JoinFan(ctx, js, saleID, session, lane, region, "")
}

// JoinFan publishes a join like Join that also records fan, the account of
// a promoter-asserted identity, or "" for none. The message id is still the
// session: joins of one account from several devices store one message
// within the duplicate window, and the queue drops later repeats.
func JoinFan(ctx context.Context, js jetstream.JetStream, saleID, session, lane, region, fan string) (*jetstream.PubAck, error) {
	m := wire.QueueMsg{Kind: wire.KindJoin, Session: session, Lane: lane, Region: region, Fan: fan}
	return Publish(ctx, js, saleID, m, "join:"+session)
}

// IsWrongLastSequence reports whether err is JetStream's rejection of a
// publish whose expected last sequence did not match.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
