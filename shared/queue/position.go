package queue

import (
	"math"
	"time"
)

// View is what one fan sees of the queue.
type View struct {
	State string `json:"state"`
	Lane  string `json:"lane,omitempty"`
	// Fan is the fan account the join asserted, or "".
	Fan string `json:"fan,omitempty"`
	// Ahead is the number of fans still waiting ahead in the lane, exactly.
	Ahead int `json:"ahead"`
	// Position is Ahead+1 while waiting, 0 otherwise.
	Position int `json:"position"`
	// WaitMin and WaitMax bound the wait estimate; both are zero when no
	// estimate can be made (paused, closed, or no outflow yet and no rate).
	WaitMin time.Duration `json:"-"`
	WaitMax time.Duration `json:"-"`
	// Measured is true when the estimate comes from admissions actually
	// seen, false when it comes from the configured rate.
	Measured bool      `json:"measured"`
	Paused   bool      `json:"paused"`
	Closed   string    `json:"closed,omitempty"`
	JoinedAt time.Time `json:"joined_at"`
	// AdmittedAt and AdmissionEnds are set once admitted; ArriveBy is the
	// deadline to reach the store, and Arrived says whether the fan did.
	AdmittedAt    time.Time `json:"admitted_at,omitzero"`
	AdmissionEnds time.Time `json:"admission_ends,omitzero"`
	ArriveBy      time.Time `json:"arrive_by,omitzero"`
	Arrived       bool      `json:"arrived"`
	// OpensAt is the scheduled opening while the fan is in the pre-queue,
	// and PreQueued the number of fans there.
	OpensAt   time.Time `json:"opens_at,omitzero"`
	PreQueued int       `json:"pre_queued,omitempty"`
}

// Lookup returns the view of session at now.
func (s *State) Lookup(session string, now time.Time) View {
	f := s.fans[session]
	if f == nil {
		return View{State: Unknown}
	}
	v := View{
		State:    f.state,
		Lane:     f.lane.name,
		Fan:      f.account,
		JoinedAt: f.joinedAt,
		Paused:   s.control.Paused,
		Closed:   s.closed,
	}
	switch f.state {
	case PreQueue:
		if r := s.round(); r != nil {
			v.OpensAt = r.OpensAt
		}
		v.PreQueued = s.PreQueued()
	case Waiting:
		if s.closed != "" {
			v.State = Closed
			return v
		}
		v.Ahead = f.lane.waiting.before(f.idx)
		v.Position = v.Ahead + 1
		s.estimate(f.lane, &v, now)
	case Admitted:
		v.AdmittedAt = f.admittedAt
		v.AdmissionEnds = f.admittedAt.Add(s.ShoppingWindow())
		v.ArriveBy = f.admittedAt.Add(s.ArrivalWindow())
		v.Arrived = f.arrived
		if !now.Before(v.AdmissionEnds) || f.noShow || (!f.arrived && !now.Before(v.ArriveBy)) {
			v.State = Done
		}
	}
	return v
}

// estimate fills the wait range from the lane's measured outflow, falling
// back to the configured rate before any admission has been seen.
func (s *State) estimate(l *lane, v *View, now time.Time) {
	if s.control.Paused {
		return
	}
	cut := 0
	for cut < len(l.admits) && l.admits[cut].at.Before(now.Add(-outflowWindow)) {
		cut++
	}
	l.admits = l.admits[cut:]

	perSec := 0.0
	if len(l.admits) > 0 {
		n := 0
		for _, a := range l.admits {
			n += a.count
		}
		// Measure over at least 30 s so one early batch does not promise a
		// rate that the controller will not keep.
		span := max(now.Sub(l.admits[0].at), 30*time.Second)
		perSec = float64(n) / span.Seconds()
		v.Measured = true
	} else if s.control.RatePerMinute > 0 {
		perSec = float64(s.control.RatePerMinute) / 60
	}
	if perSec <= 0 {
		return
	}
	// The next admission batch comes within a second; then fans ahead drain
	// at the measured rate, give or take a quarter.
	base := float64(v.Ahead) / perSec
	v.WaitMin = seconds(base * 0.8)
	v.WaitMax = seconds(base*1.25 + 1)
}

func seconds(f float64) time.Duration {
	return time.Duration(math.Ceil(f)) * time.Second
}
