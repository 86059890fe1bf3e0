package admission

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/logkey"
)

// LeaseConfig tunes the admission leases of a core replica.
type LeaseConfig struct {
	// Bucket is the JetStream KV bucket that stores one key per on-sale
	// whose value is the holder. All replicas of a deployment must use the
	// same bucket.
	Bucket string
	// TTL is the bucket's maximum age of a value: a holder that stops
	// renewing loses its key this long after its last renewal, and another
	// replica can then take the lease. It must be more than twice Renew.
	TTL time.Duration
	// Renew is how often the holder renews its key, and how often a
	// replica without the lease tries to take it.
	Renew time.Duration
	// Replicas is the bucket's replication factor. Use the queue streams'
	// factor, so the lease survives the same node failures as the queue.
	Replicas int
}

// DefaultLeaseConfig returns the bucket TAQ_LEASES with a 3 s TTL renewed
// every second, on one replica.
func DefaultLeaseConfig() LeaseConfig {
	return LeaseConfig{Bucket: "TAQ_LEASES", TTL: 3 * time.Second, Renew: time.Second, Replicas: 1}
}

// Lease is one replica's claim on the right to admit the fans of one
// on-sale. It implements Gate: the controller admits only while Held
// returns true, so with several core replicas one admits at a time.
//
// The lease is a key in a JetStream KV bucket whose values expire after
// LeaseConfig.TTL. Acquiring creates the key, which succeeds only when it
// is absent. Renewing updates it at the last revision the holder wrote,
// which fails once anyone else wrote it. A holder that dies stops renewing,
// and its key expires.
//
// Held is a hint, not a fence: the replica's clock and the server's clock
// may disagree, so two replicas may both see Held true for as long as the
// clocks are apart. The admit publish, which expects the last sequence of
// the admit subject, is what keeps two batches from being applied on top
// of the same queue state.
type Lease struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	cfg    LeaseConfig
	key    string
	holder string
	log    *slog.Logger
	now    func() time.Time

	mu sync.Mutex // guards validUntil and failing
	// validUntil is when this replica stops being sure it holds the key:
	// the send time of the last successful create or update, plus the TTL
	// minus one renewal interval. Zero while the lease is not held.
	validUntil time.Time
	// failing is true after a failed request until the next success, so
	// an outage logs one warning instead of one per attempt.
	failing bool

	// rev is the revision this replica last wrote, or 0 when it does not
	// hold the key. Only the run goroutine uses it while the lease runs,
	// and Close after that goroutine has stopped.
	rev uint64

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ Gate = (*Lease)(nil)

// NewLease returns a lease on saleID for the core replica replicaID. A
// random suffix makes the holder unique even when two processes share a
// replica id by mistake. Zero fields of cfg take their defaults. Start
// runs it.
func NewLease(js jetstream.JetStream, saleID, replicaID string, cfg LeaseConfig, log *slog.Logger) *Lease {
	def := DefaultLeaseConfig()
	if cfg.Bucket == "" {
		cfg.Bucket = def.Bucket
	}
	if cfg.TTL <= 0 {
		cfg.TTL = def.TTL
	}
	if cfg.Renew <= 0 {
		cfg.Renew = def.Renew
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = def.Replicas
	}
	holder := randomSuffix()
	if replicaID != "" {
		holder = replicaID + "." + holder
	}
	return &Lease{
		js: js, cfg: cfg, key: saleID, holder: holder, now: time.Now,
		log: log.With(logkey.Component, "core.admission.lease", logkey.SaleID, saleID),
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// Holder returns the value this lease writes to its key.
func (l *Lease) Holder() string { return l.holder }

// Start creates the bucket, or updates its settings, and then tries to
// take the lease at once and every Renew interval until ctx ends or Close
// is called. It returns an error when the bucket cannot be set up or the
// configuration is invalid.
func (l *Lease) Start(ctx context.Context) error {
	if l.cfg.TTL <= 2*l.cfg.Renew {
		return fmt.Errorf("lease %s: ttl %v must be more than twice the renewal interval %v", l.key, l.cfg.TTL, l.cfg.Renew)
	}
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.cfg.Bucket,
		Description: "Taquilla admission leases: one key per on-sale, the value names the core replica that admits",
		History:     1,
		TTL:         l.cfg.TTL,
		// File storage keeps a key through a node restart, so a restarted
		// node cannot hand out a lease that is still held.
		Storage:  jetstream.FileStorage,
		Replicas: l.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("lease %s: create bucket %s: %w", l.key, l.cfg.Bucket, err)
	}
	l.kv = kv

	ctx, l.cancel = context.WithCancel(ctx)
	l.wg.Add(1)
	go l.run(ctx)
	return nil
}

// Held reports whether this replica holds the lease and its last renewal
// is recent enough that the key cannot have expired yet. It turns false
// when a renewal fails, without waiting for the key to expire.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.validUntil)
}

// Close stops renewing and, when the key is still this replica's, deletes
// it, so another replica can take over without waiting for the TTL. It is
// safe to call twice. A lease whose process is killed instead expires on
// its own.
func (l *Lease) Close() error {
	l.closeOnce.Do(func() {
		if l.cancel == nil {
			return
		}
		l.cancel()
		l.wg.Wait()
		l.drop()
		if l.rev == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l.closeErr = l.release(ctx)
	})
	return l.closeErr
}

// release deletes the key if this replica still holds it.
func (l *Lease) release(ctx context.Context) error {
	err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// An update whose reply was lost may have stored a newer revision
		// of this replica's value. Any other value is another holder's.
		if !l.adopt(ctx) {
			return nil
		}
		err = l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	l.log.Info("lease released")
	return nil
}

func (l *Lease) run(ctx context.Context) {
	defer l.wg.Done()
	tick := time.NewTicker(l.cfg.Renew)
	defer tick.Stop()
	for {
		l.step(ctx)
		select {
		case <-ctx.Done():
			l.drop()
			return
		case <-tick.C:
		}
	}
}

// step makes one attempt to take or renew the lease. Each attempt times
// out after one renewal interval, before the key could expire.
func (l *Lease) step(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, l.cfg.Renew)
	defer cancel()
	if l.rev == 0 {
		l.acquire(ctx)
		return
	}
	err := l.renew(ctx)
	// A rejected update means the key moved on. If it still holds this
	// replica's value, a lost reply hid a stored update: renew again at
	// that revision.
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && l.adopt(ctx) {
		err = l.renew(ctx)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && parent.Err() == nil {
		// Not a rejection: the next attempt retries at the same revision.
		l.failed(err)
	}
}

func (l *Lease) acquire(ctx context.Context) {
	sent := l.now()
	rev, err := l.kv.Create(ctx, l.key, []byte(l.holder))
	switch {
	case err == nil:
		l.rev = rev
		l.extend(sent)
		l.log.Info("lease acquired", logkey.Seq, rev)
	case errors.Is(err, jetstream.ErrKeyExists):
		// Another replica holds it, so try again at the next interval.
	case errors.Is(err, context.Canceled):
		// The lease is stopping.
	default:
		l.failed(err)
	}
}

// renew updates the key at the last revision written. A failure ends Held
// at once, whatever its cause.
func (l *Lease) renew(ctx context.Context) error {
	sent := l.now()
	rev, err := l.kv.Update(ctx, l.key, []byte(l.holder), l.rev)
	if err != nil {
		l.drop()
		return err
	}
	l.rev = rev
	l.extend(sent)
	return nil
}

// adopt reads the key and reports whether it holds this replica's value,
// taking its revision if so. Otherwise the lease is lost and the next
// attempt tries to create the key again.
func (l *Lease) adopt(ctx context.Context) bool {
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case err == nil && string(e.Value()) == l.holder:
		l.rev = e.Revision()
		return true
	case err == nil, errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		l.rev = 0
		l.log.Warn("lease lost")
		return false
	default:
		l.failed(err)
		return false
	}
}

// extend records a successful create or update sent at sent. The server
// stored it after sent, so the key lives at least until sent+TTL by the
// server's clock. Held keeps one renewal interval of that as a margin for
// scheduling delays and clock drift.
func (l *Lease) extend(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.validUntil = sent.Add(l.cfg.TTL - l.cfg.Renew)
	if l.failing {
		l.failing = false
		l.log.Info("lease request succeeded after failures")
	}
}

// drop ends Held until the next successful create or update.
func (l *Lease) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.validUntil = time.Time{}
}

// failed logs the first of a run of failed attempts at Warn and the rest
// at Debug.
func (l *Lease) failed(err error) {
	l.drop()
	l.mu.Lock()
	first := !l.failing
	l.failing = true
	l.mu.Unlock()
	if first {
		l.log.Warn("lease request failed", logkey.Err, err)
		return
	}
	l.log.Debug("lease request failed", logkey.Err, err)
}

// NewReplicaID returns a random core replica id, "core-" and 12 hex digits,
// for replicas that are not given one.
func NewReplicaID() string {
	return "core-" + randomSuffix()
}
