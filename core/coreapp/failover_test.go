package coreapp_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/admission"
	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/coreapp"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/wire"
)

// Settings of the failover test: 20 admissions a second with a 100 ms
// tick, so the controller publishes a batch of about two fans every tick,
// and 300 fans take about 15 s plus the failovers.
const (
	failoverRate   = 1200 // admissions per minute
	failoverFans   = 300
	failoverFirst  = 200 // fans who join before the first failover
	failoverTick   = 100 * time.Millisecond
	failoverLeases = 3 // replicas of the queue stream and of the lease bucket
)

// replica is one core replica of the failover test, connected to its own
// node of the cluster and failing over to the others, as a separate
// process would be.
type replica struct {
	*running
	id      string
	node    int
	stopped bool
}

// startReplica starts a core replica named id whose NATS connection starts
// at the given node of the cluster.
func startReplica(t *testing.T, h *harness, cl *natstest.Cluster, node int, id string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := nats.Connect(cl.URLs(node), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s to node %d: %v", id, node, err)
	}
	db := h.openDB(ctx)
	cfg := h.cfg
	cfg.ReplicaID = id
	sim := payments.NewSim(payments.SimConfig{})
	c, err := coreapp.New(cfg, nc, db, sim, token.NewVerifier(h.key.Public().(ed25519.PublicKey)), h.log)
	if err != nil {
		t.Fatalf("new core %s: %v", id, err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start core %s: %v", id, err)
	}
	r := &replica{running: &running{core: c, nc: nc, db: db, cancel: cancel}, id: id, node: node}
	t.Cleanup(r.stop)
	return r
}

func (r *replica) kill() {
	if !r.stopped {
		r.stopped = true
		r.running.kill()
	}
}

func (r *replica) stop() {
	if !r.stopped {
		r.stopped = true
		r.running.stop()
	}
}

// admitter returns the running replica that holds the sale's admission
// lease, or nil, and fails the test when two replicas hold it at once.
func admitter(t *testing.T, replicas ...*replica) *replica {
	t.Helper()
	var holder *replica
	for _, r := range replicas {
		if r.stopped || !r.core.HoldsLease(sale) {
			continue
		}
		if holder != nil {
			t.Fatalf("replicas %s and %s both hold the admission lease", holder.id, r.id)
		}
		holder = r
	}
	return holder
}

func newFailoverHarness(t *testing.T) *harness {
	t.Helper()
	key, err := token.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := coreapp.DefaultConfig()
	// The cap and the shopping window are far from binding: this test is
	// about the rate and the order of admissions.
	cfg.Initial = wire.Control{RatePerMinute: failoverRate, Cap: 10 * failoverFans, ShoppingSeconds: 600}
	cfg.Admission.Tick = failoverTick
	cfg.Stream.Replicas = failoverLeases
	h := &harness{t: t, dbURL: pgtest.Start(t), key: key, signer: token.NewSigner(key), cfg: cfg,
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	db := h.openDB(context.Background())
	defer db.Close()
	c, err := catalog.Builtin("smoke")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LoadCatalog(context.Background(), c); err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	return h
}

func mustJoin(t *testing.T, ctx context.Context, js jetstream.JetStream, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := natsq.Join(ctx, js, sale, fanSession(i), wire.DefaultLane, "test"); err != nil {
			t.Fatalf("join fan %d: %v", i, err)
		}
	}
}

func fanSession(i int) string { return fmt.Sprintf("f-%03d", i) }

// TestCore_Failover runs two core replicas against a 3-node JetStream
// cluster while 300 fans are admitted in small batches. It kills the
// replica that admits right after one of its batches is stored, checks
// that the other takes over, starts a replacement, and stops the node
// that leads the queue stream. A fresh reader of the stream then checks
// that every fan was admitted exactly once, in join order, and never
// faster than the configured rate.
func TestCore_Failover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover test takes about 40 s")
	}
	cl := natstest.RunCluster(t, 3)
	h := newFailoverHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	replicas := []*replica{
		startReplica(t, h, cl, 0, "core-a"),
		startReplica(t, h, cl, 1, "core-b"),
	}

	// A watcher on the third node counts admissions as they happen and
	// signals each admit message.
	_, js := natstest.MustConnect(t, cl.URLs(2))
	watch := natsq.NewFollower(js, sale, wire.Control{}, h.log)
	var admitted atomic.Int64
	batches := make(chan uint64, 1024)
	watch.OnApply = func(seq uint64, _ wire.QueueMsg, res queue.Result) {
		if len(res.Admitted) == 0 {
			return
		}
		admitted.Add(int64(len(res.Admitted)))
		select {
		case batches <- seq:
		default:
		}
	}
	if err := watch.Start(ctx); err != nil {
		t.Fatalf("start watcher: %v", err)
	}
	defer watch.Close()
	waitAdmitted := func(what string, timeout time.Duration, n int64) {
		t.Helper()
		eventually.Check(t, timeout, func() error {
			admitter(t, replicas...)
			if got := admitted.Load(); got < n {
				return fmt.Errorf("%s: %d fans admitted, want %d", what, got, n)
			}
			return nil
		})
	}

	mustJoin(t, ctx, js, 0, failoverFirst)
	waitAdmitted("before the crash", 30*time.Second, 60)

	// Kill the replica that admits right after one of its admit messages
	// is stored, while its next decisions are due every tick.
	active := admitter(t, replicas...)
	if active == nil {
		t.Fatal("fans were admitted but no replica holds the lease")
	}
	for len(batches) > 0 {
		<-batches
	}
	select {
	case <-batches:
	case <-time.After(10 * time.Second):
		t.Fatalf("no admit message from %s within 10 s", active.id)
	}
	active.kill()
	killedAt, atKill := time.Now(), admitted.Load()
	t.Logf("killed %s after %d admissions", active.id, atKill)

	var survivor *replica
	eventually.Check(t, 10*time.Second, func() error {
		survivor = admitter(t, replicas...)
		if survivor == nil || admitted.Load() <= atKill {
			return fmt.Errorf("no replica admits since %s was killed", active.id)
		}
		return nil
	})
	t.Logf("%s took over and admitted within %v", survivor.id, time.Since(killedAt).Round(100*time.Millisecond))

	// A replacement replica starts where the killed one ran; it must wait
	// while the survivor holds the lease.
	replicas = append(replicas, startReplica(t, h, cl, active.node, "core-c"))
	mustJoin(t, ctx, js, failoverFirst, failoverFans)
	waitAdmitted("before the node stop", 30*time.Second, atKill+60)

	// Stop the node that leads the queue stream while fans are admitted.
	leader := cl.StreamLeader(wire.StreamName(sale))
	if leader < 0 {
		t.Fatal("no node leads the queue stream")
	}
	cl.Stop(leader)
	atStop := admitted.Load()
	t.Logf("stopped node %d, the queue stream's leader, after %d admissions", leader, atStop)
	if atStop >= failoverFans {
		t.Fatalf("all %d fans were admitted before the node stopped; lower the rate", failoverFans)
	}
	waitAdmitted("with a node down", 40*time.Second, min(atStop+20, failoverFans))
	cl.Restart(leader)
	waitAdmitted("all fans", 40*time.Second, failoverFans)

	for _, r := range replicas {
		r.stop()
	}
	checkAdmissionLog(t, ctx, cl)
}

// admitBatch is one admit message that admitted fans.
type admitBatch struct {
	seq uint64
	n   int
	at  time.Time
}

// checkAdmissionLog reads the queue stream from its first message with a
// fresh follower and checks the admissions against the joins.
func checkAdmissionLog(t *testing.T, ctx context.Context, cl *natstest.Cluster) {
	t.Helper()
	_, js := natstest.MustConnect(t, cl.URLs(0))
	stream, err := js.Stream(ctx, wire.StreamName(sale))
	if err != nil {
		t.Fatalf("queue stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("queue stream info: %v", err)
	}
	if info.Config.Replicas != failoverLeases {
		t.Errorf("queue stream replicas = %d, want %d", info.Config.Replicas, failoverLeases)
	}
	leases, err := js.Stream(ctx, "KV_"+admission.DefaultLeaseConfig().Bucket)
	if err != nil {
		t.Fatalf("lease bucket: %v", err)
	}
	if got := leases.CachedInfo().Config.Replicas; got != failoverLeases {
		t.Errorf("lease bucket replicas = %d, want %d like the queue stream", got, failoverLeases)
	}

	// The follower calls OnApply after WaitFor may have returned; Close
	// waits for its goroutine, so the slices are complete after Close.
	var (
		joined, admitted []string
		batches          []admitBatch
		mu               sync.Mutex
	)
	f := natsq.NewFollower(js, sale, wire.Control{}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	f.OnApply = func(seq uint64, m wire.QueueMsg, res queue.Result) {
		mu.Lock()
		defer mu.Unlock()
		if m.Kind == wire.KindJoin && !res.Duplicate {
			joined = append(joined, m.Session)
		}
		if len(res.Admitted) > 0 {
			admitted = append(admitted, res.Admitted...)
			batches = append(batches, admitBatch{seq: seq, n: len(res.Admitted)})
		}
	}
	if err := f.Start(ctx); err != nil {
		t.Fatalf("start fresh follower: %v", err)
	}
	err = f.WaitFor(ctx, info.State.LastSeq)
	f.Close()
	if err != nil {
		t.Fatalf("replay the queue stream: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()

	if len(joined) != failoverFans {
		t.Errorf("%d joins on the stream, want %d", len(joined), failoverFans)
	}
	times := make(map[string]int)
	for _, s := range admitted {
		times[s]++
	}
	for _, s := range joined {
		if times[s] != 1 {
			t.Errorf("fan %s admitted %d times, want once", s, times[s])
		}
	}
	if len(times) != len(joined) {
		t.Errorf("%d distinct fans admitted, %d joined", len(times), len(joined))
	}
	// No fan left the queue, so the admissions must follow the join order
	// exactly.
	for i := range min(len(joined), len(admitted)) {
		if admitted[i] != joined[i] {
			t.Errorf("admission %d went to %s, want %s, the next fan in join order", i, admitted[i], joined[i])
			break
		}
	}

	for i := range batches {
		msg, err := stream.GetMsg(ctx, batches[i].seq)
		if err != nil {
			t.Fatalf("read admit message %d: %v", batches[i].seq, err)
		}
		batches[i].at = msg.Time
	}
	// NOTE: the test admits 300 fans in well under a minute, so the minute
	// window cannot exceed a rate of 1200. The 10 s window below is the
	// check that catches two replicas admitting at once.
	checkRate(t, batches, time.Minute, failoverRate)
	// The controller's leaky bucket admits at most one second's worth
	// more than the rate over any window. Two more seconds' worth cover an
	// admit stored after its publish timed out, which the controller did
	// not count against its bucket, and the delay between a decision and
	// the stream's timestamp. Two replicas admitting at once would exceed
	// this by about the rate itself.
	perSecond := failoverRate / 60
	checkRate(t, batches, 10*time.Second, failoverRate/6+3*perSecond)
}

// checkRate checks that the batches admitted at most limit fans in any
// window of the given length, by the stream's timestamps.
func checkRate(t *testing.T, batches []admitBatch, window time.Duration, limit int) {
	t.Helper()
	sorted := append([]admitBatch(nil), batches...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].at.Before(sorted[j].at) })
	worst, worstAt, sum, first := 0, time.Time{}, 0, 0
	for _, b := range sorted {
		sum += b.n
		for !sorted[first].at.After(b.at.Add(-window)) {
			sum -= sorted[first].n
			first++
		}
		if sum > worst {
			worst, worstAt = sum, sorted[first].at
		}
	}
	if worst > limit {
		t.Errorf("%d fans admitted in the %v from %s, want at most %d", worst, window, worstAt.Format(time.StampMilli), limit)
	}
	t.Logf("at most %d fans admitted in any %v, limit %d", worst, window, limit)
}
