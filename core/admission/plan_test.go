package admission_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/admission"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// sim drives a queue.State and a Planner over simulated time and keeps its
// own model of every lane's order to check the state against.
type sim struct {
	t   *testing.T
	rng *rand.Rand
	st  *queue.State
	p   *admission.Planner
	seq uint64
	now time.Time

	lanes    map[string][]string // model: sessions in queue order per lane
	laneOf   map[string]string
	waiting  map[string]bool
	pre      []string // model: pre-queue in join order
	admitted map[string]bool
	lastPos  map[string]int
	admits   []time.Time // one entry per admitted fan
	control  wire.Control
	seed     []byte
	nextFan  int
}

func newSim(t *testing.T, seed uint64) *sim {
	s := &sim{
		t: t, rng: rand.New(rand.NewPCG(seed, 7)), p: &admission.Planner{},
		now:   time.Date(2026, 12, 11, 9, 0, 0, 0, time.UTC),
		lanes: map[string][]string{}, laneOf: map[string]string{}, waiting: map[string]bool{},
		admitted: map[string]bool{}, lastPos: map[string]int{},
		control: wire.Control{RatePerMinute: 120, Cap: 40, ShoppingSeconds: 120},
	}
	s.st = queue.New("prop", s.control)
	return s
}

func (s *sim) apply(m wire.QueueMsg) queue.Result {
	s.seq++
	res, err := s.st.Apply(s.seq, s.now, m)
	if err != nil {
		s.t.Fatalf("seq %d: Apply(%+v) = %v", s.seq, m, err)
	}
	return res
}

func (s *sim) join() {
	s.nextFan++
	id := fmt.Sprintf("f%05d", s.nextFan)
	lane := []string{wire.DefaultLane, wire.DefaultLane, wire.DefaultLane, "bank", "access"}[s.rng.IntN(5)]
	s.apply(wire.QueueMsg{Kind: wire.KindJoin, Session: id, Lane: lane})
	s.laneOf[id] = lane
	if _, _, ok := s.st.Scheduled(); ok {
		s.pre = append(s.pre, id)
		return
	}
	s.lanes[lane] = append(s.lanes[lane], id)
	s.waiting[id] = true
}

func (s *sim) leave() {
	var cand []string
	for id := range s.waiting {
		cand = append(cand, id)
	}
	for _, id := range s.pre {
		if s.laneOf[id] != "" {
			cand = append(cand, id)
		}
	}
	if len(cand) == 0 {
		return
	}
	slices.Sort(cand)
	id := cand[s.rng.IntN(len(cand))]
	s.apply(wire.QueueMsg{Kind: wire.KindLeave, Session: id})
	delete(s.waiting, id)
	delete(s.lastPos, id)
	if i := slices.Index(s.pre, id); i >= 0 {
		s.pre = slices.Delete(s.pre, i, i+1)
	}
}

// step advances the clock, lets the planner decide and applies its
// decision the way the controller publishes it.
func (s *sim) step(dt time.Duration) {
	s.now = s.now.Add(dt)
	d := s.p.Plan(s.now, s.st, false)
	if d.Open != "" {
		if d.Open != queue.Commitment(s.seed) {
			s.t.Fatalf("planner opens commitment %s, want %s", d.Open, queue.Commitment(s.seed))
		}
		s.apply(wire.QueueMsg{Kind: wire.KindOpen, Seed: hex.EncodeToString(s.seed)})
		// Model the shuffle independently: sort by HMAC key.
		sort.SliceStable(s.pre, func(i, j int) bool {
			return bytes.Compare(queue.ShuffleKey(s.seed, s.pre[i]), queue.ShuffleKey(s.seed, s.pre[j])) < 0
		})
		for _, id := range s.pre {
			s.lanes[s.laneOf[id]] = append(s.lanes[s.laneOf[id]], id)
			s.waiting[id] = true
		}
		s.pre = nil
	}
	for _, m := range d.Admits {
		if s.st.Shopping(s.now)+len(m.Sessions) > s.control.Cap {
			s.t.Fatalf("at %s: admitting %d with %d shopping passes the cap %d", s.now, len(m.Sessions), s.st.Shopping(s.now), s.control.Cap)
		}
		res := s.apply(m)
		for _, id := range res.Admitted {
			if s.admitted[id] {
				s.t.Fatalf("%s admitted twice", id)
			}
			// None skipped: the fan must be first waiting in its lane.
			for _, other := range s.lanes[s.laneOf[id]] {
				if other == id {
					break
				}
				if s.waiting[other] {
					s.t.Fatalf("%s admitted while %s waited ahead in lane %s", id, other, s.laneOf[id])
				}
			}
			s.admitted[id] = true
			delete(s.waiting, id)
			delete(s.lastPos, id)
			s.admits = append(s.admits, s.now)
		}
	}
	if len(d.Admits) > 0 {
		s.checkRate()
	}
	s.checkPositions()
}

// checkRate checks, right after an admission, that the admissions of the
// last minute stay within the rate in force. (A rate lowered mid-minute
// cannot undo admissions already made; the next admission waits until the
// minute is back under it.)
func (s *sim) checkRate() {
	n := 0
	for i := len(s.admits) - 1; i >= 0 && s.admits[i].After(s.now.Add(-time.Minute)); i-- {
		n++
	}
	if n > s.control.RatePerMinute {
		s.t.Fatalf("at %s: %d admitted in the last minute, rate %d", s.now, n, s.control.RatePerMinute)
	}
}

// checkPositions compares every waiting fan's position with the model and
// with the fan's previous position.
func (s *sim) checkPositions() {
	for lane, ids := range s.lanes {
		ahead := 0
		for _, id := range ids {
			if !s.waiting[id] {
				continue
			}
			v := s.st.Lookup(id, s.now)
			if v.State != queue.Waiting || v.Ahead != ahead || v.Lane != lane {
				s.t.Fatalf("%s = %s ahead %d in %s, model says waiting ahead %d in %s", id, v.State, v.Ahead, v.Lane, ahead, lane)
			}
			if last, ok := s.lastPos[id]; ok && v.Position > last {
				s.t.Fatalf("%s went up from %d to %d", id, last, v.Position)
			}
			s.lastPos[id] = v.Position
			ahead++
		}
	}
	for _, id := range s.pre {
		if v := s.st.Lookup(id, s.now); v.State != queue.PreQueue {
			s.t.Fatalf("%s = %s before the opening, want prequeue", id, v.State)
		}
	}
}

// TestPlanner_Property runs random sequences of joins, leaves, lane share
// changes, rate and cap changes, scheduled openings, fans finishing and
// controller failovers, checking after every step that positions are exact
// and never go up, FIFO holds within each lane after the shuffle, no fan is
// admitted twice or skipped, and neither the rate over any minute nor the
// cap is passed.
func TestPlanner_Property(t *testing.T) {
	for run := range 12 {
		t.Run(fmt.Sprint("seed", run), func(t *testing.T) {
			s := newSim(t, uint64(run))
			if run%2 == 0 {
				seed := sha256.Sum256([]byte(fmt.Sprint("seed", run)))
				s.seed = seed[:]
				s.apply(wire.QueueMsg{Kind: wire.KindSchedule, OpensAt: s.now.Add(20 * time.Second), Commitment: queue.Commitment(s.seed)})
			}
			for i := 0; i < 3000; i++ {
				switch r := s.rng.IntN(100); {
				case r < 45:
					s.join()
				case r < 55:
					s.leave()
				case r < 58:
					shares := []wire.LaneConfig{{Name: "bank", Share: s.rng.IntN(50)}, {Name: "access", Share: s.rng.IntN(30)}}
					s.apply(wire.QueueMsg{Kind: wire.KindLanes, Lanes: shares})
				case r < 60:
					s.control.RatePerMinute = 30 + s.rng.IntN(300)
					s.control.Cap = 5 + s.rng.IntN(60)
					c := s.control
					s.apply(wire.QueueMsg{Kind: wire.KindControl, Control: &c})
				case r < 62:
					*s.p = admission.Planner{} // the active replica died; a new one takes over
				case r < 72:
					for id := range s.admitted {
						s.apply(wire.QueueMsg{Kind: wire.KindDone, Session: id})
						break
					}
				}
				s.step(time.Duration(50+s.rng.IntN(400)) * time.Millisecond)
			}
			a := s.st.Audit()
			if !a.OK() || a.OutOfOrder != 0 {
				t.Fatalf("audit = %+v, want ok", a)
			}
			if len(s.admitted) == 0 {
				t.Fatalf("nobody admitted in %d steps", 3000)
			}
			t.Logf("admitted %d of %d fans, audit %d messages", len(s.admitted), s.nextFan, a.AdmitMessages)
		})
	}
}

// TestSplit_Shares checks that lanes get their shares over many small
// batches, and that a lane's unused share goes to the others.
func TestSplit_Shares(t *testing.T) {
	lanes := []string{"access", "bank", wire.DefaultLane}
	shares := map[string]int{"access": 10, "bank": 30, wire.DefaultLane: 60}
	credit := map[string]float64{}
	got := map[string]int{}
	waiting := map[string]int{"access": 1 << 20, "bank": 1 << 20, wire.DefaultLane: 1 << 20}
	for range 1000 {
		for l, n := range admission.Split(2, lanes, waiting, shares, credit) {
			got[l] += n
		}
	}
	if got["access"] < 190 || got["access"] > 210 || got["bank"] < 590 || got["bank"] > 610 || got[wire.DefaultLane] < 1190 || got[wire.DefaultLane] > 1210 {
		t.Errorf("2,000 admissions in batches of 2 split %v, want about 200/600/1200", got)
	}

	// bank has one fan: it gets one, the rest of its share flows on.
	waiting["bank"] = 1
	alloc := admission.Split(100, lanes, waiting, shares, map[string]float64{})
	if alloc["bank"] != 1 || alloc["access"]+alloc[wire.DefaultLane] != 99 {
		t.Errorf("Split with one bank fan = %v, want bank 1 and 99 for the others", alloc)
	}
	// With no fan waiting, no lane gets anything.
	if alloc := admission.Split(10, lanes, map[string]int{}, shares, map[string]float64{}); len(alloc) != 0 {
		t.Errorf("Split with nobody waiting = %v, want nothing", alloc)
	}
}
