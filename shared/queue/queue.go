// Package queue is the waiting-room state machine that every edge and every
// core replica runs. It applies an on-sale's stream messages in stream order
// and returns exact positions. It does no I/O and reads no clock: time comes
// from the stream's timestamps and from the caller, so every replica that has
// applied the same messages holds the same state.
package queue

import (
	"fmt"
	"time"

	"github.com/taquilla/taquilla/shared/wire"
)

// Fan states.
const (
	Waiting  = "waiting"  // in a lane, not yet admitted
	Admitted = "admitted" // admitted to the store; shopping
	Left     = "left"     // left the queue or was removed before admission
	Done     = "done"     // finished shopping, left after admission, or the admission expired
	Closed   = "closed"   // waiting in a queue that closed (sold out)
	Unknown  = "unknown"  // no such session
)

// outflowWindow is how far back admissions are measured for wait estimates.
const outflowWindow = 5 * time.Minute

type fan struct {
	session    string
	account    string // promoter-asserted fan account (hash), or ""
	lane       *lane
	idx        int // index in lane.fans
	state      string
	joinedAt   time.Time
	admittedAt time.Time
	// slotEnded is true once the fan no longer counts as shopping (done,
	// left, no-show or expired), so the shopping count is decremented once.
	slotEnded bool
	// arrived is true once the fan reached the store within the arrival
	// window.
	arrived bool
	noShow  bool
}

type stamp struct {
	at    time.Time
	count int
}

type lane struct {
	name    string
	fans    []*fan
	waiting fenwick // flag set while fans[i] is waiting
	head    int     // fans before head are no longer waiting
	nWait   int
	admits  []stamp // admissions within outflowWindow, oldest first
}

// State is one on-sale's queue. It is not safe for concurrent use; callers
// serialise access.
type State struct {
	sale    string
	lanes   map[string]*lane
	fans    map[string]*fan
	lastSeq uint64
	lastAt  time.Time

	control      wire.Control
	lastBatch    uint64
	lastAdmitSeq uint64 // stream sequence of the last admit message
	// lastControlSeq is the stream sequence of the last control message.
	lastControlSeq uint64
	closed         string // reason, "" while open

	// admittedFIFO lists admitted fans in admission order; fans before
	// slotHead no longer hold a shopping slot.
	admittedFIFO []*fan
	slotHead     int
	// arrivalFIFO lists admitted fans in admission order for the arrival
	// deadline; fans before arrivalHead are past it.
	arrivalFIFO []*fan
	arrivalHead int
	shopping    int
	// recentAdmits lists every admit batch of the last minute for the rate
	// window, oldest first.
	recentAdmits []stamp

	joins, admitted, left, done, noShows int

	// prequeue lists, in join order, the fans who joined while a round
	// waited for its opening.
	prequeue []*fan
	nPre     int            // fans of prequeue still in it
	preLane  map[string]int // the same, per lane
	shares   map[string]int
	codes    map[string]*accessCode
	rejected int
	audit    Audit
}

// New returns an empty queue for an on-sale with the initial settings.
func New(saleID string, initial wire.Control) *State {
	return &State{
		sale:    saleID,
		lanes:   make(map[string]*lane),
		fans:    make(map[string]*fan),
		codes:   make(map[string]*accessCode),
		preLane: make(map[string]int),
		control: initial,
	}
}

// Result says what applying one message changed, so edges can notify the
// fans concerned at once.
type Result struct {
	// Admitted lists the sessions that this message admitted.
	Admitted []string
	// Duplicate is true when the message was a no-op repeat.
	Duplicate bool
	// Rejected is the reason a join got no place (RejectCodeUnknown,
	// RejectCodeUsed), or is "".
	Rejected string
}

// Apply applies the message with stream sequence seq, published at time at.
// A sequence at or below the last applied one is ignored, so redelivery is
// harmless. Invalid messages are skipped with an error; the state stays
// unchanged by them.
func (s *State) Apply(seq uint64, at time.Time, m wire.QueueMsg) (Result, error) {
	if seq <= s.lastSeq {
		return Result{Duplicate: true}, nil
	}
	s.lastSeq = seq
	if at.After(s.lastAt) {
		s.lastAt = at
	}
	at = s.lastAt // stream timestamps may step back across leaders; keep time monotonic

	switch m.Kind {
	case wire.KindJoin:
		return s.join(at, m)
	case wire.KindLeave, wire.KindDone:
		return s.leave(at, m)
	case wire.KindArrive:
		return s.arrive(at, m)
	case wire.KindAdmit:
		s.lastAdmitSeq = seq
		return s.admit(at, m)
	case wire.KindControl:
		if m.Control == nil {
			return Result{}, fmt.Errorf("control message at seq %d without settings", seq)
		}
		s.control = *m.Control
		s.lastControlSeq = seq
		return Result{}, nil
	case wire.KindClose:
		s.closed = m.Reason
		if s.closed == "" {
			s.closed = "closed"
		}
		return Result{}, nil
	case wire.KindReopen:
		s.closed = ""
		return Result{}, nil
	case wire.KindSchedule:
		return s.schedule(seq, m)
	case wire.KindOpen:
		return s.open(seq, at, m)
	case wire.KindLanes:
		return s.setLanes(m)
	case wire.KindCodes:
		return s.addCodes(m)
	default:
		return Result{}, fmt.Errorf("unknown queue message kind %q at seq %d", m.Kind, seq)
	}
}

func (s *State) join(at time.Time, m wire.QueueMsg) (Result, error) {
	if m.Session == "" {
		return Result{}, fmt.Errorf("join without session")
	}
	if _, ok := s.fans[m.Session]; ok {
		return Result{Duplicate: true}, nil
	}
	name := m.Lane
	if m.Code != "" {
		// The stream orders every use of a code, so each replica counts
		// the same joins in and rejects the same ones.
		c := s.codes[m.Code]
		switch {
		case c == nil:
			s.rejected++
			return Result{Rejected: RejectCodeUnknown}, nil
		case c.used >= c.uses:
			s.rejected++
			return Result{Rejected: RejectCodeUsed}, nil
		}
		c.used++
		name = c.lane
	}
	if name == "" {
		name = wire.DefaultLane
	}
	l := s.lanes[name]
	if l == nil {
		l = &lane{name: name}
		s.lanes[name] = l
	}
	f := &fan{session: m.Session, account: m.Fan, lane: l, state: Waiting, joinedAt: at}
	s.fans[m.Session] = f
	s.joins++
	if s.round() != nil {
		f.state = PreQueue
		s.prequeue = append(s.prequeue, f)
		s.nPre++
		s.preLane[l.name]++
		return Result{}, nil
	}
	f.idx = l.waiting.push()
	l.fans = append(l.fans, f)
	l.nWait++
	return Result{}, nil
}

func (s *State) leave(at time.Time, m wire.QueueMsg) (Result, error) {
	f := s.fans[m.Session]
	if f == nil {
		return Result{Duplicate: true}, nil
	}
	switch f.state {
	case PreQueue:
		f.state = Left
		s.nPre--
		s.preLane[f.lane.name]--
		s.left++
	case Waiting:
		f.lane.waiting.clear(f.idx)
		f.lane.nWait--
		f.state = Left
		s.left++
	case Admitted:
		f.state = Done
		s.done++
		s.endSlot(f)
	default:
		return Result{Duplicate: true}, nil
	}
	return Result{}, nil
}

func (s *State) admit(at time.Time, m wire.QueueMsg) (Result, error) {
	if m.Batch != 0 && m.Batch <= s.lastBatch {
		return Result{Duplicate: true}, nil
	}
	if m.Batch != 0 {
		s.lastBatch = m.Batch
	}
	name := m.Lane
	if name == "" {
		name = wire.DefaultLane
	}
	l := s.lanes[name]
	if l == nil || (m.Count <= 0 && len(m.Sessions) == 0) {
		return Result{}, nil
	}

	if m.Sessions != nil {
		return s.admitListed(at, l, m), nil
	}
	var res Result
	for len(res.Admitted) < m.Count && l.head < len(l.fans) {
		f := l.fans[l.head]
		l.head++
		if f.state != Waiting {
			continue
		}
		s.admitOne(at, f)
		res.Admitted = append(res.Admitted, f.session)
	}
	s.countAdmits(at, l, len(res.Admitted))
	return res, nil
}

// admitListed admits the sessions an admit message lists, in its order,
// and audits each against the fan first in line in the lane.
func (s *State) admitListed(at time.Time, l *lane, m wire.QueueMsg) Result {
	var res Result
	s.audit.AdmitMessages++
	for _, sid := range m.Sessions {
		f := s.fans[sid]
		if f == nil || f.lane != l || f.state != Waiting {
			s.audit.NotWaiting++
			continue
		}
		l.skipHead()
		if first := l.fans[l.head]; first != f {
			s.audit.OutOfOrder++
			s.audit.problem("batch %d: %s admitted while %s waited ahead in lane %s", m.Batch, sid, first.session, l.name)
		}
		s.admitOne(at, f)
		res.Admitted = append(res.Admitted, f.session)
	}
	s.audit.AdmittedFans += len(res.Admitted)
	s.countAdmits(at, l, len(res.Admitted))
	return res
}

func (s *State) admitOne(at time.Time, f *fan) {
	f.lane.waiting.clear(f.idx)
	f.lane.nWait--
	f.state = Admitted
	f.admittedAt = at
	s.admittedFIFO = append(s.admittedFIFO, f)
	s.arrivalFIFO = append(s.arrivalFIFO, f)
	s.shopping++
	s.admitted++
}

func (s *State) countAdmits(at time.Time, l *lane, n int) {
	if n > 0 {
		l.admits = append(l.admits, stamp{at: at, count: n})
		s.recentAdmits = append(s.recentAdmits, stamp{at: at, count: n})
	}
}

// arrive records that an admitted fan reached the store. An arrival after
// the fan's arrival deadline comes too late: the slot is gone.
func (s *State) arrive(at time.Time, m wire.QueueMsg) (Result, error) {
	f := s.fans[m.Session]
	if f == nil || f.state != Admitted || f.arrived {
		return Result{Duplicate: true}, nil
	}
	if !at.Before(f.admittedAt.Add(s.ArrivalWindow())) {
		return Result{Duplicate: true}, nil
	}
	f.arrived = true
	return Result{}, nil
}

// ArrivalWindow returns how long an admitted fan has to reach the store,
// never longer than the shopping window.
func (s *State) ArrivalWindow() time.Duration {
	w := 10 * time.Minute
	if s.control.ArrivalSeconds > 0 {
		w = time.Duration(s.control.ArrivalSeconds) * time.Second
	}
	return min(w, s.ShoppingWindow())
}

// endSlot frees f's shopping slot once.
func (s *State) endSlot(f *fan) {
	if f.slotEnded {
		return
	}
	f.slotEnded = true
	s.shopping--
}

// expire ends the slots of fans who did not arrive within the arrival
// window, and of admissions older than the shopping window, at now.
func (s *State) expire(now time.Time) {
	arrival := s.ArrivalWindow()
	for s.arrivalHead < len(s.arrivalFIFO) {
		f := s.arrivalFIFO[s.arrivalHead]
		if now.Before(f.admittedAt.Add(arrival)) {
			break
		}
		if !f.arrived && !f.slotEnded && f.state == Admitted {
			f.noShow = true
			s.noShows++
			s.endSlot(f)
		}
		s.arrivalFIFO[s.arrivalHead] = nil
		s.arrivalHead++
	}
	if s.arrivalHead > 1024 && s.arrivalHead > len(s.arrivalFIFO)/2 {
		s.arrivalFIFO = append([]*fan(nil), s.arrivalFIFO[s.arrivalHead:]...)
		s.arrivalHead = 0
	}

	window := s.ShoppingWindow()
	for s.slotHead < len(s.admittedFIFO) {
		f := s.admittedFIFO[s.slotHead]
		if !f.slotEnded && now.Before(f.admittedAt.Add(window)) {
			break
		}
		s.endSlot(f)
		s.admittedFIFO[s.slotHead] = nil
		s.slotHead++
	}
	if s.slotHead > 1024 && s.slotHead > len(s.admittedFIFO)/2 {
		s.admittedFIFO = append([]*fan(nil), s.admittedFIFO[s.slotHead:]...)
		s.slotHead = 0
	}
}

// ShoppingWindow returns how long an admission lasts.
func (s *State) ShoppingWindow() time.Duration {
	if s.control.ShoppingSeconds <= 0 {
		return 30 * time.Minute
	}
	return time.Duration(s.control.ShoppingSeconds) * time.Second
}

// Shopping returns the number of admitted fans holding a shopping slot at now.
func (s *State) Shopping(now time.Time) int {
	s.expire(now)
	return s.shopping
}

// AdmittedSince returns the number of fans admitted after since.
func (s *State) AdmittedSince(since time.Time) int {
	n := 0
	for i := len(s.recentAdmits) - 1; i >= 0 && s.recentAdmits[i].at.After(since); i-- {
		n += s.recentAdmits[i].count
	}
	// Trim entries older than any window a caller asks about.
	cut := 0
	for cut < len(s.recentAdmits) && s.recentAdmits[cut].at.Before(s.lastAt.Add(-2*time.Minute)) {
		cut++
	}
	s.recentAdmits = s.recentAdmits[cut:]
	return n
}

// Control returns the current settings.
func (s *State) Control() wire.Control { return s.control }

// ClosedReason returns why the queue closed, or "" while it is open.
func (s *State) ClosedReason() string { return s.closed }

// LastSeq returns the sequence of the last applied message.
func (s *State) LastSeq() uint64 { return s.lastSeq }

// LastAdmitSeq returns the stream sequence of the last admit message, the
// expected last subject sequence of the next admit publish.
func (s *State) LastAdmitSeq() uint64 { return s.lastAdmitSeq }

// LastControlSeq returns the stream sequence of the last control message,
// the expected last subject sequence of a change based on Control.
func (s *State) LastControlSeq() uint64 { return s.lastControlSeq }

// LastBatch returns the number of the last applied admit batch.
func (s *State) LastBatch() uint64 { return s.lastBatch }

// Lanes returns the lane names in no particular order.
func (s *State) Lanes() []string {
	names := make([]string, 0, len(s.lanes))
	for n := range s.lanes {
		names = append(names, n)
	}
	return names
}

// WaitingIn returns the number of fans waiting in a lane.
func (s *State) WaitingIn(laneName string) int {
	if l := s.lanes[laneName]; l != nil {
		return l.nWait
	}
	return 0
}

// Stats summarises the queue.
type Stats struct {
	LastSeq  uint64 `json:"last_seq"`
	Joined   int    `json:"joined"`
	Waiting  int    `json:"waiting"`
	Admitted int    `json:"admitted"`
	Shopping int    `json:"shopping"`
	Left     int    `json:"left"`
	Done     int    `json:"done"`
	// NoShows counts admitted fans who did not reach the store in time.
	NoShows int    `json:"no_shows"`
	Closed  string `json:"closed,omitempty"`
	// PreQueued counts fans waiting for a scheduled opening; Rejected
	// counts joins turned away for an unknown or used-up access code.
	PreQueued int `json:"pre_queued"`
	Rejected  int `json:"rejected"`
}

// Stats returns counters of the queue at now.
func (s *State) Stats(now time.Time) Stats {
	st := Stats{
		LastSeq:   s.lastSeq,
		Joined:    s.joins,
		Admitted:  s.admitted,
		Shopping:  s.Shopping(now),
		Left:      s.left,
		Done:      s.done,
		NoShows:   s.noShows,
		Closed:    s.closed,
		PreQueued: s.PreQueued(),
		Rejected:  s.rejected,
	}
	for _, l := range s.lanes {
		st.Waiting += l.nWait
	}
	return st
}
