package wire

import "time"

// Control service subjects. The core serves them as a NATS micro service
// named ControlService; `taquilla ctl` and the dashboard call them.
const (
	ControlService   = "taquilla-control"
	SubjectCtlSales  = "taq.ctl.sales"
	SubjectCtlStats  = "taq.ctl.stats"
	SubjectCtlPause  = "taq.ctl.pause"
	SubjectCtlResume = "taq.ctl.resume"
	SubjectCtlRate   = "taq.ctl.rate"
	SubjectCtlCap    = "taq.ctl.cap"
	SubjectCtlPoW    = "taq.ctl.pow"
	// SubjectCtlIdentity sets Control.IdentityRequired: Value 1 requires a
	// promoter-signed fan identity to join, 0 does not.
	SubjectCtlIdentity = "taq.ctl.identity"
	SubjectCtlRemove   = "taq.ctl.remove"
	// Scheduled openings, lanes and access codes.
	SubjectCtlSchedule = "taq.ctl.schedule"
	SubjectCtlOpen     = "taq.ctl.open"
	SubjectCtlLane     = "taq.ctl.lane"
	SubjectCtlCodes    = "taq.ctl.codes"
	SubjectCtlAuto     = "taq.ctl.auto"
)

// ControlRequest is the body of every control request. By names the
// operator; it is recorded on the queue stream with the change.
type ControlRequest struct {
	V       int    `json:"v"`
	Sale    string `json:"sale,omitempty"`
	Session string `json:"session,omitempty"`
	Value   *int   `json:"value,omitempty"`
	// Max is the upper bound of an auto request; Value is the lower.
	Max *int   `json:"max,omitempty"`
	By  string `json:"by"`
	// At is the opening time of a schedule request.
	At time.Time `json:"at,omitzero"`
	// Lane names the lane of a lane or codes request.
	Lane string `json:"lane,omitempty"`
	// Codes are hashed access codes (CodeHash) to add to Lane; Value is
	// the uses of each.
	Codes []string `json:"codes,omitempty"`
}

// LaneStatus is one lane of a sale as the control service reports it.
type LaneStatus struct {
	Name    string `json:"name"`
	Share   int    `json:"share"`
	Waiting int    `json:"waiting"`
	// PreQueued counts the lane's fans waiting for a scheduled opening.
	PreQueued int `json:"pre_queued"`
	// Codes and CodeUses count the lane's access codes and the joins they
	// let in.
	Codes    int `json:"codes"`
	CodeUses int `json:"code_uses"`
}

// SaleStatus is what the control service reports of one sale.
type SaleStatus struct {
	Sale     string  `json:"sale"`
	Name     string  `json:"name"`
	Control  Control `json:"control"`
	Waiting  int     `json:"waiting"`
	Admitted int     `json:"admitted"`
	Shopping int     `json:"shopping"`
	Left     int     `json:"left"`
	Done     int     `json:"done"`
	// NoShows counts admitted fans who did not reach the store in time.
	NoShows int `json:"no_shows"`
	// AdmittedLastMinute counts admissions in the last 60 seconds.
	AdmittedLastMinute int    `json:"admitted_last_minute"`
	Closed             string `json:"closed_reason,omitempty"`
	Available          int    `json:"available"`
	Held               int    `json:"held"`
	InCheckout         int    `json:"in_checkout"`
	Sold               int    `json:"sold"`
	LastSeq            uint64 `json:"last_seq"`
	// OpensAt is set while the sale waits for a scheduled opening, with
	// the commitment to its shuffle seed and the fans in the pre-queue.
	OpensAt    time.Time    `json:"opens_at,omitzero"`
	Commitment string       `json:"commitment,omitempty"`
	PreQueued  int          `json:"pre_queued"`
	Lanes      []LaneStatus `json:"lanes,omitempty"`
	// Rejected counts joins turned away for an unknown or used-up code.
	Rejected int `json:"rejected"`
}
