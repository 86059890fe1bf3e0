// Package lobby is the edge's view of the on-sale queues: it follows every
// sale's queue stream, publishes joins and leaves, and computes each fan's
// status locally from the replicated queue state, with no per-fan NATS
// traffic.
package lobby

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Lobby follows the queues of all on-sales.
type Lobby struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	signer *token.Signer
	region string
	log    *slog.Logger
	now    func() time.Time

	// OnAdmitted, if set before Start, is called with sessions admitted by
	// a batch; OnChanged with a sale whose queue changed for every fan
	// (closed, reopened, opened, rescheduled, new settings or new stock).
	OnAdmitted func(sale string, sessions []string)
	OnChanged  func(sale string)

	mu        sync.RWMutex // guards sales and followers
	sales     []waitroom.Sale
	followers map[string]*natsq.Follower

	stockCache

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Lobby. region names this edge's region in join messages.
func New(nc *nats.Conn, signer *token.Signer, region string, log *slog.Logger) (*Lobby, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Lobby{nc: nc, js: js, signer: signer, region: region, now: time.Now,
		log: log.With(logkey.Component, "edge.lobby"), followers: make(map[string]*natsq.Follower),
		stockCache: stockCache{stock: make(map[string]wire.Stock)}}, nil
}

// Start loads the sale list from the core and follows each sale's queue,
// then refreshes the list every few seconds in the background. It waits up
// to ctx's deadline for the core to answer the first time.
func (l *Lobby) Start(ctx context.Context) error {
	for {
		err := l.refresh(ctx)
		if err == nil {
			break
		}
		l.log.Warn("sale list not loaded; retrying", logkey.Err, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("load sales from core: %w", err)
		case <-time.After(time.Second):
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		l.watchStock(bg)
	}()
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := l.refresh(bg); err != nil && bg.Err() == nil {
					l.log.Debug("sale list refresh failed", logkey.Err, err)
				}
			}
		}
	}()
	return nil
}

func (l *Lobby) refresh(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := json.Marshal(wire.StoreRequest{V: wire.Version})
	msg, err := l.nc.RequestWithContext(rctx, wire.SubjectSales, body)
	if err != nil {
		return fmt.Errorf("request sales: %w", err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return fmt.Errorf("decode sales: %w", err)
	}
	if err := reply.Err(); err != nil {
		return fmt.Errorf("request sales: %w", err)
	}
	var sales []waitroom.Sale
	if err := json.Unmarshal(reply.Data, &sales); err != nil {
		return fmt.Errorf("decode sales: %w", err)
	}
	for _, s := range sales {
		if err := l.follow(ctx, s.ID); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.sales = sales
	l.mu.Unlock()
	return nil
}

func (l *Lobby) follow(ctx context.Context, saleID string) error {
	l.mu.RLock()
	_, ok := l.followers[saleID]
	l.mu.RUnlock()
	if ok {
		return nil
	}
	f := natsq.NewFollower(l.js, saleID, wire.Control{}, l.log)
	f.OnApply = func(seq uint64, m wire.QueueMsg, res queue.Result) {
		switch {
		case len(res.Admitted) > 0 && l.OnAdmitted != nil:
			l.OnAdmitted(saleID, res.Admitted)
		case l.OnChanged != nil && notifiesAll(m.Kind):
			l.OnChanged(saleID)
		}
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	l.followers[saleID] = f
	l.mu.Unlock()
	l.log.Info("following queue", logkey.SaleID, saleID)
	return nil
}

// notifiesAll reports whether a message of kind changes the status of every
// fan of the sale.
func notifiesAll(kind string) bool {
	switch kind {
	case wire.KindClose, wire.KindReopen, wire.KindControl, wire.KindSchedule, wire.KindOpen:
		return true
	}
	return false
}

func (l *Lobby) follower(saleID string) *natsq.Follower {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.followers[saleID]
}

// Sales returns the on-sales with a summary of each queue.
func (l *Lobby) Sales() []wire.SaleInfo {
	l.mu.RLock()
	sales := append([]waitroom.Sale(nil), l.sales...)
	l.mu.RUnlock()
	now := l.now()
	out := make([]wire.SaleInfo, 0, len(sales))
	for _, s := range sales {
		info := wire.SaleInfo{Sale: s}
		if f := l.follower(s.ID); f != nil {
			f.Do(func(st *queue.State) {
				stats := st.Stats(now)
				ctl := st.Control()
				info.Queue = wire.QueueInfo{Waiting: stats.Waiting, Admitted: stats.Admitted,
					Paused: ctl.Paused, Closed: stats.Closed, IdentityRequired: ctl.IdentityRequired}
			})
		}
		out = append(out, info)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartsAt.Before(out[j].StartsAt) })
	return out
}

// ErrUnknownSale means no on-sale has the id.
var ErrUnknownSale = &waitroom.Error{Code: waitroom.ENOTFOUND, Message: "no such sale"}

// SessionFor returns the session id that a join with idempotency key gets:
// derived from the key, so a retried join reaches the same place from any
// edge, or random when there is no key.
func SessionFor(saleID, idempotencyKey string) string {
	if idempotencyKey == "" {
		return waitroom.NewID("s_")
	}
	sum := sha256.Sum256([]byte("taquilla-session\x00" + saleID + "\x00" + idempotencyKey))
	return "s_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15])
}

// FanKeyPrefix starts the key that SessionFor derives a fan account's
// session from. Idempotency keys must not start with it, or a client that
// knows an account could claim its place.
const FanKeyPrefix = "fan:"

// FanSession returns the session of a fan account's place in a sale: the
// same from every device and edge, so the account has one place.
func FanSession(saleID, account string) string {
	return SessionFor(saleID, FanKeyPrefix+account)
}

// Known reports whether a session already has a place in a sale's queue.
func (l *Lobby) Known(saleID, session string) bool {
	f := l.follower(saleID)
	if f == nil {
		return false
	}
	known := false
	f.Do(func(st *queue.State) { known = st.Lookup(session, l.now()).State != queue.Unknown })
	return known
}

// Closed returns why a sale's queue is closed, or "".
func (l *Lobby) Closed(saleID string) (string, error) {
	f := l.follower(saleID)
	if f == nil {
		return "", ErrUnknownSale
	}
	var reason string
	f.Do(func(st *queue.State) { reason = st.ClosedReason() })
	return reason, nil
}

// Difficulty returns the proof-of-work difficulty that the operator set for
// a sale on its queue stream, or def when none was set.
func (l *Lobby) Difficulty(saleID string, def int) int {
	f := l.follower(saleID)
	if f == nil {
		return def
	}
	d := def
	f.Do(func(st *queue.State) {
		if p := st.Control().PoWDifficulty; p != nil {
			d = *p
		}
	})
	return d
}

// IdentityRequired reports whether the operator made a sale require a
// promoter-signed fan identity to join.
func (l *Lobby) IdentityRequired(saleID string) bool {
	f := l.follower(saleID)
	if f == nil {
		return false
	}
	required := false
	f.Do(func(st *queue.State) { required = st.Control().IdentityRequired })
	return required
}

// Join publishes a join, waits until this edge has applied it, and returns
// the fan's ticket and status. fan is the account of the fan's verified
// identity, or "" without one. code is an access code for a presale lane,
// or "". A sale that requires an identity rejects a join without one with
// identity.ErrRequired, and nothing is published. The join is acknowledged
// only once JetStream stored it; when NATS is unreachable it fails with
// EUNAVAILABLE.
func (l *Lobby) Join(ctx context.Context, saleID, session, fan, code string) (string, wire.Status, error) {
	f := l.follower(saleID)
	if f == nil {
		return "", wire.Status{}, ErrUnknownSale
	}
	if fan == "" && l.IdentityRequired(saleID) {
		return "", wire.Status{}, identity.ErrRequired
	}
	m := wire.QueueMsg{Kind: wire.KindJoin, Session: session, Lane: wire.DefaultLane, Region: l.region, Fan: fan}
	msgID := "join:" + session
	if code != "" {
		hash, err := l.checkCode(saleID, code)
		if err != nil {
			return "", wire.Status{}, err
		}
		m.Code, m.Lane = hash, ""
		// A join rejected for its code must not block a later join of the
		// same session without one inside the duplicate window.
		msgID += ":" + hash[:16]
	}
	ack, err := natsq.Publish(ctx, l.js, saleID, m, msgID)
	if err != nil {
		l.log.Warn("join not stored", logkey.SaleID, saleID, logkey.Err, err)
		return "", wire.Status{}, &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "the queue is not reachable; retry in a few seconds"}
	}
	if err := f.WaitFor(ctx, ack.Sequence); err != nil {
		// Stored but not yet seen here: the place is safe; the status
		// catches up on the next read. With a code the outcome is not
		// known yet, and a retry of the same join returns it.
		l.log.Warn("join stored but not applied yet", logkey.Seq, ack.Sequence, logkey.Err, err)
		if code != "" {
			return "", wire.Status{}, &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "the queue is slow to confirm the access code; retry the same join in a few seconds"}
		}
	}
	now := l.now()
	st := l.Status(saleID, session)
	if code != "" && st.State == queue.Unknown {
		// Other sessions used the code's last uses first in stream order.
		return "", wire.Status{}, ErrCodeUsed
	}
	claims := token.NewTicket(saleID, session, st.Lane, now)
	claims.Fan = fan
	ticket := l.signer.Sign(claims)
	return ticket, st, nil
}

// Errors of a join with an access code.
var (
	ErrCodeUnknown = &waitroom.Error{Code: waitroom.ENOTFOUND, Message: "unknown access code; check it, or join without one"}
	ErrCodeUsed    = &waitroom.Error{Code: waitroom.ECONFLICT, Message: "this access code has no uses left; join without one"}
)

// MaxCodeLen bounds an access code.
const MaxCodeLen = 64

// checkCode returns the hash of an access code that exists and has uses
// left in this edge's copy of the queue. The queue counts uses exactly, in
// stream order, so this check only keeps joins that cannot succeed off the
// stream.
func (l *Lobby) checkCode(saleID, code string) (string, error) {
	if len(code) > MaxCodeLen {
		return "", waitroom.Errorf(waitroom.EINVALID, "an access code has at most %d characters", MaxCodeLen)
	}
	hash := wire.CodeHash(saleID, code)
	f := l.follower(saleID)
	if f == nil {
		return "", ErrUnknownSale
	}
	var left int
	var ok bool
	f.Do(func(st *queue.State) { _, left, ok = st.CodeStatus(hash) })
	switch {
	case !ok:
		return "", ErrCodeUnknown
	case left == 0:
		return "", ErrCodeUsed
	}
	return hash, nil
}

// Leave publishes that a fan left the queue (or, once admitted, finished).
func (l *Lobby) Leave(ctx context.Context, saleID, session string) (wire.Status, error) {
	f := l.follower(saleID)
	if f == nil {
		return wire.Status{}, ErrUnknownSale
	}
	m := wire.QueueMsg{Kind: wire.KindLeave, Session: session, Reason: "fan", By: "fan"}
	ack, err := natsq.Publish(ctx, l.js, saleID, m, "leave:"+session)
	if err != nil {
		return wire.Status{}, &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "the queue is not reachable; retry in a few seconds"}
	}
	if err := f.WaitFor(ctx, ack.Sequence); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return wire.Status{}, err
	}
	return l.Status(saleID, session), nil
}

// Status returns what a fan sees, with a fresh admission token once admitted.
func (l *Lobby) Status(saleID, session string) wire.Status {
	now := l.now()
	st := wire.Status{V: wire.Version, Sale: saleID, Session: session, State: queue.Unknown, UpdatedAt: now}
	f := l.follower(saleID)
	if f == nil {
		return st
	}
	var v queue.View
	f.Do(func(q *queue.State) { v = q.Lookup(session, now) })
	st.State, st.Lane, st.Position, st.Ahead = v.State, v.Lane, v.Position, v.Ahead
	st.WaitMinSeconds, st.WaitMaxSeconds = int64(v.WaitMin/time.Second), int64(v.WaitMax/time.Second)
	st.Measured, st.Paused, st.Closed = v.Measured, v.Paused, v.Closed
	st.OpensAt, st.PreQueued = v.OpensAt, v.PreQueued
	st.Stale = !l.nc.IsConnected()
	if stock, ok := l.Stock(saleID); ok && v.State == queue.Waiting && likelySoldOut(stock, v.Ahead) {
		st.LikelySoldOut = true
		st.Alternatives = l.alternatives(saleID)
	}
	if v.State == queue.Admitted {
		claims := token.NewAdmission(saleID, session, now, v.AdmissionEnds)
		claims.Fan = v.Fan // the account the join recorded, so per-fan limits count against it
		tok := l.signer.Sign(claims)
		st.Admission = &wire.Admission{Token: tok, ExpiresAt: v.AdmissionEnds}
	}
	return st
}

// Close stops following the queues.
func (l *Lobby) Close() {
	if l.cancel != nil {
		l.cancel()
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.followers {
		f.Close()
	}
}
