package queue_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

var t0 = time.Date(2026, 12, 11, 9, 0, 0, 0, time.UTC)

type feeder struct {
	st  *queue.State
	seq uint64
	at  time.Time
}

func newFeeder() *feeder {
	return &feeder{st: queue.New("s", wire.Control{RatePerMinute: 60, Cap: 1000, ShoppingSeconds: 600}), at: t0}
}

func (f *feeder) apply(tb testing.TB, m wire.QueueMsg) queue.Result {
	tb.Helper()
	f.seq++
	f.at = f.at.Add(100 * time.Millisecond)
	res, err := f.st.Apply(f.seq, f.at, m)
	if err != nil {
		tb.Fatalf("Apply(%+v) = %v", m, err)
	}
	return res
}

func TestState_PositionsExact(t *testing.T) {
	f := newFeeder()
	for i := range 5 {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", i)})
	}
	for i := range 5 {
		v := f.st.Lookup(fmt.Sprint("f", i), f.at)
		if v.State != queue.Waiting || v.Ahead != i || v.Position != i+1 {
			t.Errorf("Lookup(f%d) = %s ahead %d position %d, want waiting ahead %d", i, v.State, v.Ahead, v.Position, i)
		}
	}

	f.apply(t, wire.QueueMsg{Kind: wire.KindLeave, Session: "f1"})
	if v := f.st.Lookup("f3", f.at); v.Ahead != 2 {
		t.Errorf("after f1 left, f3 ahead = %d, want 2", v.Ahead)
	}
	res := f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 2, Batch: 1})
	if fmt.Sprint(res.Admitted) != "[f0 f2]" {
		t.Errorf("admitted %v, want [f0 f2]", res.Admitted)
	}
	if v := f.st.Lookup("f4", f.at); v.Ahead != 1 {
		t.Errorf("after admitting two, f4 ahead = %d, want 1", v.Ahead)
	}
	if v := f.st.Lookup("f0", f.at); v.State != queue.Admitted || v.AdmissionEnds.IsZero() {
		t.Errorf("f0 = %+v, want admitted with an end", v)
	}
}

func TestState_DuplicatesIgnored(t *testing.T) {
	f := newFeeder()
	f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "a"})
	f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "b"})
	if res := f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "a"}); !res.Duplicate {
		t.Errorf("second join of a not reported as duplicate")
	}
	if v := f.st.Lookup("a", f.at); v.Position != 1 {
		t.Errorf("a's position after a repeated join = %d, want 1", v.Position)
	}
	if v := f.st.Lookup("b", f.at); v.Position != 2 {
		t.Errorf("b's position after a repeated join of a = %d, want 2", v.Position)
	}

	// A redelivered message (same or lower sequence) changes nothing.
	res, err := f.st.Apply(1, f.at, wire.QueueMsg{Kind: wire.KindLeave, Session: "a"})
	if err != nil || !res.Duplicate {
		t.Errorf("redelivered seq 1 = %+v, %v; want duplicate", res, err)
	}

	// A batch published twice is applied once.
	f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 1, Batch: 1})
	if res := f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 1, Batch: 1}); !res.Duplicate || len(res.Admitted) != 0 {
		t.Errorf("repeated batch admitted %v, want nothing", res.Admitted)
	}
	if v := f.st.Lookup("b", f.at); v.State != queue.Waiting {
		t.Errorf("b = %s after a repeated batch, want waiting", v.State)
	}
}

func TestState_UnknownKind(t *testing.T) {
	st := queue.New("s", wire.Control{})
	if _, err := st.Apply(1, t0, wire.QueueMsg{Kind: "teleport"}); err == nil {
		t.Fatal("Apply(unknown kind) = nil error, want error")
	}
	if _, err := st.Apply(2, t0, wire.QueueMsg{Kind: wire.KindJoin, Session: "a"}); err != nil {
		t.Fatalf("join after an unknown message: %v", err)
	}
	if v := st.Lookup("a", t0); v.Position != 1 {
		t.Errorf("position = %d, want 1", v.Position)
	}
}

func TestState_ShoppingCapAndExpiry(t *testing.T) {
	f := newFeeder()
	for i := range 4 {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", i)})
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 3, Batch: 1})
	if n := f.st.Shopping(f.at); n != 3 {
		t.Fatalf("shopping = %d, want 3", n)
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindDone, Session: "f0"})
	f.apply(t, wire.QueueMsg{Kind: wire.KindDone, Session: "f0"})
	if n := f.st.Shopping(f.at); n != 2 {
		t.Errorf("shopping after f0 done twice = %d, want 2", n)
	}
	later := f.at.Add(11 * time.Minute)
	if n := f.st.Shopping(later); n != 0 {
		t.Errorf("shopping after the window = %d, want 0", n)
	}
	// A done for an expired admission must not free a slot twice.
	f.at = later
	f.apply(t, wire.QueueMsg{Kind: wire.KindDone, Session: "f1"})
	if n := f.st.Shopping(later); n != 0 {
		t.Errorf("shopping = %d, want 0", n)
	}
	if got := f.st.AdmittedSince(t0); got != 3 {
		t.Errorf("AdmittedSince = %d, want 3", got)
	}
}

func TestState_EstimateFromOutflow(t *testing.T) {
	f := newFeeder()
	for i := range 100 {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", i)})
	}
	v := f.st.Lookup("f59", f.at)
	if v.Measured || v.WaitMin <= 0 {
		t.Errorf("before any admission: %+v, want an estimate from the configured rate", v)
	}
	// 10 fans per 10 s = 1 fan/s measured.
	for b := range 6 {
		f.at = f.at.Add(10 * time.Second)
		f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 10, Batch: uint64(b + 1)})
	}
	v = f.st.Lookup("f99", f.at)
	if !v.Measured || v.Ahead != 39 {
		t.Fatalf("f99 = %+v, want measured, 39 ahead", v)
	}
	if v.WaitMin > 39*time.Second || v.WaitMax < 39*time.Second {
		t.Errorf("wait %v..%v does not contain 39s", v.WaitMin, v.WaitMax)
	}

	f.apply(t, wire.QueueMsg{Kind: wire.KindControl, Control: &wire.Control{RatePerMinute: 60, Cap: 10, Paused: true}})
	if v := f.st.Lookup("f99", f.at); !v.Paused || v.WaitMax != 0 {
		t.Errorf("paused: %+v, want paused without estimate", v)
	}
}

func TestState_CloseAndReopen(t *testing.T) {
	f := newFeeder()
	f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "a"})
	f.apply(t, wire.QueueMsg{Kind: wire.KindClose, Reason: "sold_out"})
	if v := f.st.Lookup("a", f.at); v.State != queue.Closed || v.Closed != "sold_out" {
		t.Errorf("closed: %+v", v)
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindReopen})
	if v := f.st.Lookup("a", f.at); v.State != queue.Waiting || v.Position != 1 {
		t.Errorf("reopened: %+v, want waiting at 1", v)
	}
}

// TestState_Property applies random sequences of joins, leaves, dones and
// admissions and checks them against a plain list model: positions are
// exact, a waiting fan's position never goes up, admission is FIFO, and no
// fan is admitted twice or skipped. A second state fed the same stream must
// agree on every fan.
func TestState_Property(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			a, b := newFeeder(), newFeeder()
			var waiting []string // model, in arrival order
			admitted := map[string]bool{}
			lastPos := map[string]int{}
			next := 0
			for step := range 3000 {
				var m wire.QueueMsg
				switch r := rng.IntN(10); {
				case r < 5:
					m = wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", next)}
					waiting = append(waiting, m.Session)
					next++
				case r < 7 && len(waiting) > 0:
					i := rng.IntN(len(waiting))
					m = wire.QueueMsg{Kind: wire.KindLeave, Session: waiting[i]}
					waiting = append(waiting[:i], waiting[i+1:]...)
				case r < 9:
					n := rng.IntN(5)
					m = wire.QueueMsg{Kind: wire.KindAdmit, Count: n, Batch: uint64(step + 1)}
					n = min(n, len(waiting))
					want := append([]string(nil), waiting[:n]...)
					waiting = waiting[n:]
					res := a.apply(t, m)
					b.apply(t, m)
					if fmt.Sprint(res.Admitted) != fmt.Sprint(want) {
						t.Fatalf("step %d: admitted %v, want %v (FIFO)", step, res.Admitted, want)
					}
					for _, s := range res.Admitted {
						if admitted[s] {
							t.Fatalf("step %d: %s admitted twice", step, s)
						}
						admitted[s] = true
					}
					continue
				default:
					// A repeated join of a fan seen before, waiting or not,
					// changes nothing.
					if next == 0 {
						continue
					}
					m = wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", rng.IntN(next))}
				}
				a.apply(t, m)
				b.apply(t, m)

				for i, s := range waiting {
					va, vb := a.st.Lookup(s, a.at), b.st.Lookup(s, b.at)
					if va.State != queue.Waiting || va.Ahead != i {
						t.Fatalf("step %d: %s = %s ahead %d, want waiting ahead %d", step, s, va.State, va.Ahead, i)
					}
					if va.Ahead != vb.Ahead || va.State != vb.State {
						t.Fatalf("step %d: replicas disagree on %s: %+v vs %+v", step, s, va, vb)
					}
					if p, ok := lastPos[s]; ok && va.Position > p {
						t.Fatalf("step %d: %s's position went up from %d to %d", step, s, p, va.Position)
					}
					lastPos[s] = va.Position
				}
			}
		})
	}
}

func BenchmarkState_Lookup(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprint("fans=", n), func(b *testing.B) {
			st := queue.New("s", wire.Control{RatePerMinute: 500, Cap: 5000})
			for i := range n {
				if _, err := st.Apply(uint64(i+1), t0, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("f", i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				st.Lookup(fmt.Sprint("f", i%n), t0)
				i += 7919
			}
		})
	}
}

func TestState_NoShowReclaimed(t *testing.T) {
	f := newFeeder()
	f.apply(t, wire.QueueMsg{Kind: wire.KindControl, Control: &wire.Control{RatePerMinute: 60, Cap: 10, ShoppingSeconds: 1800, ArrivalSeconds: 600}})
	for _, s := range []string{"shows-up", "no-show", "late"} {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: s})
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Count: 3, Batch: 1})
	admitted := f.at
	f.apply(t, wire.QueueMsg{Kind: wire.KindArrive, Session: "shows-up"})

	if n := f.st.Shopping(admitted.Add(9 * time.Minute)); n != 3 {
		t.Errorf("shopping inside the arrival window = %d, want 3", n)
	}
	// After the window: the two who did not arrive free their slots.
	after := admitted.Add(11 * time.Minute)
	if n := f.st.Shopping(after); n != 1 {
		t.Errorf("shopping after the arrival window = %d, want 1", n)
	}
	if v := f.st.Lookup("no-show", after); v.State != queue.Done {
		t.Errorf("no-show = %s, want done", v.State)
	}
	if v := f.st.Lookup("shows-up", after); v.State != queue.Admitted || !v.Arrived {
		t.Errorf("fan who arrived = %+v, want admitted and arrived", v)
	}
	// An arrival after the deadline comes too late and changes nothing.
	f.at = after
	if res := f.apply(t, wire.QueueMsg{Kind: wire.KindArrive, Session: "late"}); !res.Duplicate {
		t.Errorf("late arrival applied")
	}
	if st := f.st.Stats(after); st.NoShows != 2 || st.Shopping != 1 {
		t.Errorf("stats = %+v, want 2 no-shows and 1 shopping", st)
	}
}
