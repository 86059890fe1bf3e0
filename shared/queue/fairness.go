package queue

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/taquilla/taquilla/shared/wire"
)

// PreQueue is the state of a fan who joined a scheduled sale before it
// opened: no position yet, only the opening time.
const PreQueue = "prequeue"

// Rejection reasons of a join.
const (
	RejectCodeUnknown = "code_unknown" // no such access code
	RejectCodeUsed    = "code_used"    // the code has no uses left
)

// Round is one scheduled opening as the stream recorded it.
type Round struct {
	// ScheduleSeq and OpenSeq are the stream sequences of the schedule and
	// open messages; OpenSeq is 0 while the round waits for its opening.
	ScheduleSeq uint64    `json:"schedule_seq"`
	OpenSeq     uint64    `json:"open_seq,omitempty"`
	OpensAt     time.Time `json:"opens_at"`
	Commitment  string    `json:"commitment"`
	Seed        string    `json:"seed,omitempty"`
	// SeedOK is true when the revealed seed hashes to the commitment.
	SeedOK bool `json:"seed_ok"`
	// PreQueued is the number of fans placed by the shuffle.
	PreQueued int `json:"pre_queued"`
	// Order lists the placed sessions in shuffled order.
	Order []string `json:"-"`
}

// Audit is the fairness record of a sale, built by replaying its stream.
type Audit struct {
	Rounds []Round `json:"rounds"`
	// AdmitMessages and AdmittedFans count admit messages and the fans
	// they admitted.
	AdmitMessages int `json:"admit_messages"`
	AdmittedFans  int `json:"admitted_fans"`
	// OutOfOrder counts fans admitted while another fan of their lane
	// waited ahead of them.
	OutOfOrder int `json:"out_of_order"`
	// NotWaiting counts sessions an admit message listed that were not
	// waiting in its lane (left just before, or never there).
	NotWaiting int `json:"not_waiting"`
	// Problems describes each violation found, at most 20.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the audit found no violation.
func (a Audit) OK() bool {
	if a.OutOfOrder > 0 {
		return false
	}
	for _, r := range a.Rounds {
		if r.OpenSeq != 0 && !r.SeedOK {
			return false
		}
	}
	return true
}

func (a *Audit) problem(format string, args ...any) {
	if len(a.Problems) < 20 {
		a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
	}
}

// Audit returns the fairness record of the messages applied so far.
func (s *State) Audit() Audit {
	a := s.audit
	a.Rounds = append([]Round(nil), s.audit.Rounds...)
	a.Problems = append([]string(nil), s.audit.Problems...)
	return a
}

// Scheduled reports whether the sale waits for a scheduled opening, and
// when.
func (s *State) Scheduled() (opensAt time.Time, commitment string, ok bool) {
	r := s.round()
	if r == nil {
		return time.Time{}, "", false
	}
	return r.OpensAt, r.Commitment, true
}

// round returns the round that waits for its opening, or nil.
func (s *State) round() *Round {
	if n := len(s.audit.Rounds); n > 0 && s.audit.Rounds[n-1].OpenSeq == 0 {
		return &s.audit.Rounds[n-1]
	}
	return nil
}

// Commitment returns the commitment of a seed: its hex SHA-256.
func Commitment(seed []byte) string {
	sum := sha256.Sum256(seed)
	return hex.EncodeToString(sum[:])
}

// ShuffleKey returns the key that orders a session in the pre-queue: the
// HMAC-SHA256 of the session under the seed.
func ShuffleKey(seed []byte, session string) []byte {
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(session))
	return m.Sum(nil)
}

func (s *State) schedule(seq uint64, m wire.QueueMsg) (Result, error) {
	if len(m.Commitment) != 64 {
		return Result{}, fmt.Errorf("schedule at seq %d without a 64-digit commitment", seq)
	}
	if r := s.round(); r != nil {
		// A new time for the same round; the commitment cannot change, or
		// the controller could pick a seed after seeing the joins.
		if r.Commitment != m.Commitment {
			s.audit.problem("seq %d: schedule with a new commitment while round %s waits", seq, short(r.Commitment))
			return Result{}, fmt.Errorf("schedule at seq %d changes the commitment of a waiting round", seq)
		}
		r.OpensAt = m.OpensAt
		return Result{}, nil
	}
	s.audit.Rounds = append(s.audit.Rounds, Round{ScheduleSeq: seq, OpensAt: m.OpensAt, Commitment: m.Commitment})
	return Result{}, nil
}

// open reveals the seed and places the pre-queue, in the order of each
// session's keyed hash, behind the fans already waiting in each lane.
func (s *State) open(seq uint64, at time.Time, m wire.QueueMsg) (Result, error) {
	r := s.round()
	if r == nil {
		return Result{Duplicate: true}, nil
	}
	seed, err := hex.DecodeString(m.Seed)
	if err != nil || len(seed) < 16 {
		// Without a seed the pre-queue cannot be ordered, so the round stays
		// closed until a valid open message comes.
		s.audit.problem("seq %d: open without a valid seed", seq)
		return Result{}, fmt.Errorf("open at seq %d without a valid hex seed", seq)
	}
	r.OpenSeq = seq
	r.Seed = m.Seed
	r.SeedOK = Commitment(seed) == r.Commitment
	if !r.SeedOK {
		s.audit.problem("seq %d: the revealed seed does not hash to commitment %s", seq, short(r.Commitment))
	}
	type keyed struct {
		f   *fan
		key []byte
	}
	list := make([]keyed, 0, len(s.prequeue))
	for _, f := range s.prequeue {
		if f.state == PreQueue {
			list = append(list, keyed{f, ShuffleKey(seed, f.session)})
		}
	}
	// Ties need two equal 256-bit hashes; join order breaks them anyway.
	sort.SliceStable(list, func(i, j int) bool { return bytes.Compare(list[i].key, list[j].key) < 0 })
	r.Order = make([]string, len(list))
	for i, k := range list {
		f := k.f
		f.state = Waiting
		f.joinedAt = at
		f.idx = f.lane.waiting.push()
		f.lane.fans = append(f.lane.fans, f)
		f.lane.nWait++
		r.Order[i] = f.session
	}
	r.PreQueued = len(list)
	s.prequeue = nil
	s.nPre = 0
	clear(s.preLane)
	return Result{}, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// PreQueued returns the number of fans waiting for the opening.
func (s *State) PreQueued() int { return s.nPre }

// PreQueuedIn returns the number of fans of a lane waiting for the opening.
func (s *State) PreQueuedIn(laneName string) int { return s.preLane[laneName] }

// setLanes replaces the lane shares.
func (s *State) setLanes(m wire.QueueMsg) (Result, error) {
	shares := make(map[string]int, len(m.Lanes))
	for _, l := range m.Lanes {
		shares[l.Name] = l.Share
	}
	s.shares = shares
	return Result{}, nil
}

// Shares returns the configured share of each lane in percent. The general
// lane gets what the others leave, at least nothing.
func (s *State) Shares() map[string]int {
	out := make(map[string]int, len(s.shares)+1)
	rest := 100
	for n, v := range s.shares {
		out[n] = v
		if n != wire.DefaultLane {
			rest -= v
		}
	}
	if _, ok := s.shares[wire.DefaultLane]; !ok {
		out[wire.DefaultLane] = max(rest, 0)
	}
	return out
}

type accessCode struct {
	lane       string
	uses, used int
}

func (s *State) addCodes(m wire.QueueMsg) (Result, error) {
	for _, c := range m.Codes {
		if c.Hash == "" || c.Uses < 0 {
			continue
		}
		if old := s.codes[c.Hash]; old != nil {
			old.lane, old.uses = c.Lane, c.Uses
			continue
		}
		s.codes[c.Hash] = &accessCode{lane: c.Lane, uses: c.Uses}
	}
	return Result{}, nil
}

// CodeStatus returns the lane of an access code and how many uses it has
// left; ok is false for an unknown code.
func (s *State) CodeStatus(hash string) (lane string, left int, ok bool) {
	c := s.codes[hash]
	if c == nil {
		return "", 0, false
	}
	return c.lane, max(c.uses-c.used, 0), true
}

// CodeUses returns the number of joins each code admitted, by hash.
func (s *State) CodeUses() map[string]int {
	out := make(map[string]int, len(s.codes))
	for h, c := range s.codes {
		out[h] = c.used
	}
	return out
}

// NextWaiting returns up to n sessions waiting first in a lane, in order.
func (s *State) NextWaiting(laneName string, n int) []string {
	l := s.lanes[laneName]
	if l == nil {
		return nil
	}
	l.skipHead()
	var out []string
	for i := l.head; i < len(l.fans) && len(out) < n; i++ {
		if l.fans[i].state == Waiting {
			out = append(out, l.fans[i].session)
		}
	}
	return out
}

// skipHead moves head past fans who no longer wait.
func (l *lane) skipHead() {
	for l.head < len(l.fans) && l.fans[l.head].state != Waiting {
		l.head++
	}
}
