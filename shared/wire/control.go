package wire

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
	SubjectCtlRemove = "taq.ctl.remove"
)

// ControlRequest is the body of every control request. By names the
// operator; it is recorded on the queue stream with the change.
type ControlRequest struct {
	V       int    `json:"v"`
	Sale    string `json:"sale,omitempty"`
	Session string `json:"session,omitempty"`
	Value   *int   `json:"value,omitempty"`
	By      string `json:"by"`
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
}
