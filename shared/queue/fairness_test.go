package queue_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

var testSeed = bytes.Repeat([]byte{7}, 32)

func scheduled(t *testing.T) *feeder {
	f := newFeeder()
	f.apply(t, wire.QueueMsg{Kind: wire.KindSchedule, OpensAt: t0.Add(time.Hour), Commitment: queue.Commitment(testSeed)})
	return f
}

func TestState_PreQueueShuffledAtOpening(t *testing.T) {
	f := scheduled(t)
	var pre []string
	for i := range 50 {
		id := fmt.Sprint("p", i)
		pre = append(pre, id)
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: id})
	}
	v := f.st.Lookup("p3", f.at)
	if v.State != queue.PreQueue || v.Position != 0 || !v.OpensAt.Equal(t0.Add(time.Hour)) || v.PreQueued != 50 {
		t.Fatalf("pre-queue view = %+v, want prequeue with the opening and 50 fans, no position", v)
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindLeave, Session: "p7"})
	pre = slices.DeleteFunc(pre, func(s string) bool { return s == "p7" })
	if n := f.st.PreQueuedIn(wire.DefaultLane); n != 49 {
		t.Errorf("PreQueuedIn(general) after one left = %d, want 49", n)
	}
	f.apply(t, wire.QueueMsg{Kind: wire.KindOpen, Seed: hex.EncodeToString(testSeed)})
	f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "late"})
	if n := f.st.PreQueuedIn(wire.DefaultLane); n != 0 {
		t.Errorf("PreQueuedIn(general) after the opening = %d, want 0", n)
	}

	sort.Slice(pre, func(i, j int) bool {
		return bytes.Compare(queue.ShuffleKey(testSeed, pre[i]), queue.ShuffleKey(testSeed, pre[j])) < 0
	})
	for i, id := range pre {
		if v := f.st.Lookup(id, f.at); v.State != queue.Waiting || v.Ahead != i {
			t.Fatalf("%s = %s ahead %d, want waiting ahead %d (shuffle order)", id, v.State, v.Ahead, i)
		}
	}
	if v := f.st.Lookup("late", f.at); v.Ahead != len(pre) {
		t.Errorf("a fan joining after the opening is ahead of %d, want behind all %d pre-queued fans", v.Ahead, len(pre))
	}
	if pre[0] == "p0" && pre[1] == "p1" {
		t.Errorf("shuffle kept join order")
	}
	a := f.st.Audit()
	if !a.OK() || len(a.Rounds) != 1 || !a.Rounds[0].SeedOK || a.Rounds[0].PreQueued != 49 || !slices.Equal(a.Rounds[0].Order, pre) {
		t.Errorf("audit = %+v, want one verified round of 49 in shuffle order", a)
	}
}

func TestState_TamperedSeedDetected(t *testing.T) {
	f := scheduled(t)
	f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "a"})
	other := bytes.Repeat([]byte{8}, 32)
	f.apply(t, wire.QueueMsg{Kind: wire.KindOpen, Seed: hex.EncodeToString(other)})
	if a := f.st.Audit(); a.OK() || a.Rounds[0].SeedOK || len(a.Problems) == 0 {
		t.Errorf("audit after a seed that does not match the commitment = %+v, want a failure", a)
	}
	// A second schedule cannot swap the commitment of a waiting round.
	g := scheduled(t)
	g.seq++
	if _, err := g.st.Apply(g.seq, g.at, wire.QueueMsg{Kind: wire.KindSchedule, OpensAt: t0, Commitment: queue.Commitment(other)}); err == nil {
		t.Errorf("a new commitment for a waiting round was accepted")
	}
}

func TestState_ReorderedAdmissionDetected(t *testing.T) {
	f := newFeeder()
	for _, id := range []string{"a", "b", "c"} {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: id})
	}
	res := f.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Batch: 1, Count: 1, Sessions: []string{"b"}})
	if !slices.Equal(res.Admitted, []string{"b"}) {
		t.Fatalf("admitted %v, want the listed [b]", res.Admitted)
	}
	a := f.st.Audit()
	if a.OK() || a.OutOfOrder != 1 {
		t.Errorf("audit after admitting b before a = %+v, want one out of order", a)
	}
	// A listed fan who left just before is not admitted and not a violation.
	g := newFeeder()
	for _, id := range []string{"a", "b"} {
		g.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: id})
	}
	g.apply(t, wire.QueueMsg{Kind: wire.KindLeave, Session: "a"})
	res = g.apply(t, wire.QueueMsg{Kind: wire.KindAdmit, Batch: 1, Count: 2, Sessions: []string{"a", "b"}})
	if a := g.st.Audit(); !slices.Equal(res.Admitted, []string{"b"}) || !a.OK() || a.NotWaiting != 1 {
		t.Errorf("admitted %v, audit %+v; want [b], ok, one not waiting", res.Admitted, a)
	}
}

func TestState_AccessCodesCountedExactly(t *testing.T) {
	f := newFeeder()
	single := wire.CodeHash("s", "bank-0001")
	multi := wire.CodeHash("s", "artist")
	f.apply(t, wire.QueueMsg{Kind: wire.KindLanes, Lanes: []wire.LaneConfig{{Name: "bank", Share: 20}, {Name: "artist", Share: 10}}})
	f.apply(t, wire.QueueMsg{Kind: wire.KindCodes, Codes: []wire.AccessCode{{Hash: single, Lane: "bank", Uses: 1}, {Hash: multi, Lane: "artist", Uses: 3}}})

	accepted := 0
	for i := range 50 {
		res := f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("s", i), Code: single})
		switch res.Rejected {
		case "":
			accepted++
		case queue.RejectCodeUsed:
		default:
			t.Fatalf("join %d rejected with %q", i, res.Rejected)
		}
	}
	if accepted != 1 || f.st.Lookup("s0", f.at).Lane != "bank" || f.st.Lookup("s1", f.at).State != queue.Unknown {
		t.Errorf("single-use code let %d joins in, want the first one only, into bank", accepted)
	}
	for i := range 5 {
		f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: fmt.Sprint("m", i), Code: multi})
	}
	if _, left, ok := f.st.CodeStatus(multi); !ok || left != 0 || f.st.WaitingIn("artist") != 3 {
		t.Errorf("three-use code: %d left, %d in artist; want 0 and 3", left, f.st.WaitingIn("artist"))
	}
	if res := f.apply(t, wire.QueueMsg{Kind: wire.KindJoin, Session: "x", Code: wire.CodeHash("s", "nope")}); res.Rejected != queue.RejectCodeUnknown {
		t.Errorf("unknown code: rejected %q, want %q", res.Rejected, queue.RejectCodeUnknown)
	}
	if got := f.st.Shares(); got["bank"] != 20 || got["artist"] != 10 || got[wire.DefaultLane] != 70 {
		t.Errorf("Shares() = %v, want bank 20, artist 10, general 70", got)
	}
	if st := f.st.Stats(f.at); st.Rejected != 49+2+1 {
		t.Errorf("Stats().Rejected = %d, want 52", st.Rejected)
	}
}
