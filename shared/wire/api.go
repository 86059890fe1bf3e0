package wire

import (
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// ErrorBody is the JSON body of every error response of the fan API.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable code and a message for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewErrorBody returns the error body for err, exposing only its client-safe
// message.
func NewErrorBody(err error) ErrorBody {
	return ErrorBody{Error: ErrorDetail{Code: waitroom.ErrorCode(err), Message: waitroom.ErrorMessage(err)}}
}

// Challenge is a proof-of-work puzzle: find a decimal Nonce such that
// SHA-256(Challenge + ":" + Nonce) starts with Difficulty zero bits.
type Challenge struct {
	Challenge  string    `json:"challenge"`
	Difficulty int       `json:"difficulty"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// JoinRequest is the body of POST /api/v1/sales/{sale}/join.
type JoinRequest struct {
	Challenge string `json:"challenge"`
	Nonce     string `json:"nonce"`
	// Ticket, when set, is a ticket the fan already holds for this sale; the
	// join then returns the same place.
	Ticket string `json:"ticket,omitempty"`
	// Identity, when set, is the fan identity that the promoter's login
	// signed (a compact JWS). The place then belongs to the fan account,
	// so every join with the same account gets the same place, and Ticket
	// and the Idempotency-Key do not choose it. Sales that require an
	// identity reject joins without a valid one.
	Identity string `json:"identity,omitempty"`
	// Code is an access code for a presale or accessibility lane; without
	// one the fan joins the general lane.
	Code string `json:"code,omitempty"`
}

// JoinResponse returns the fan's ticket and first status.
type JoinResponse struct {
	Ticket string `json:"ticket"`
	Status Status `json:"status"`
}

// Status is what a fan sees of their place; the WebSocket pushes it and
// GET /api/v1/status returns it.
type Status struct {
	V       int    `json:"v"`
	Sale    string `json:"sale"`
	Session string `json:"session"`
	// State is one of prequeue, waiting, admitted, done, left, closed,
	// unknown.
	State    string `json:"state"`
	Lane     string `json:"lane,omitempty"`
	Position int    `json:"position"`
	Ahead    int    `json:"ahead"`
	// WaitMinSeconds and WaitMaxSeconds bound the estimated wait; both zero
	// when there is no estimate.
	WaitMinSeconds int64 `json:"wait_min_s"`
	WaitMaxSeconds int64 `json:"wait_max_s"`
	// Measured is true when the estimate comes from the observed admission
	// rate of the lane.
	Measured bool   `json:"measured"`
	Paused   bool   `json:"paused"`
	Closed   string `json:"closed_reason,omitempty"`
	// Admission is set once the fan is admitted.
	Admission *Admission `json:"admission,omitempty"`
	// OpensAt is the scheduled opening while the fan waits in the
	// pre-queue; PreQueued counts the fans there. Their order is drawn at
	// the opening.
	OpensAt   time.Time `json:"opens_at,omitzero"`
	PreQueued int       `json:"pre_queued,omitempty"`
	// LikelySoldOut is true while the fans ahead would probably buy every
	// place left; Alternatives then lists other shows with places.
	LikelySoldOut bool         `json:"likely_sold_out,omitempty"`
	Alternatives  []SaleChoice `json:"alternatives,omitempty"`
	// Stale is true when the edge has lost its link to the queue and shows
	// its last known state.
	Stale     bool      `json:"stale"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Admission is the token an admitted fan presents to the store.
type Admission struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SaleInfo is one entry of GET /api/v1/sales.
type SaleInfo struct {
	waitroom.Sale
	Queue QueueInfo `json:"queue"`
}

// QueueInfo summarises a sale's queue for the sale list.
type QueueInfo struct {
	Waiting  int    `json:"waiting"`
	Admitted int    `json:"admitted"`
	Paused   bool   `json:"paused"`
	Closed   string `json:"closed_reason,omitempty"`
	// IdentityRequired is true when joins need a promoter-signed identity.
	IdentityRequired bool `json:"identity_required,omitempty"`
}

// SalesResponse is the body of GET /api/v1/sales.
type SalesResponse struct {
	Sales []SaleInfo `json:"sales"`
}

// HoldBody is the body of POST /api/v1/holds: either Seats, or Quantity
// with a Section or a Tier for the best available adjacent seats.
// AllowSplit accepts seats that are not all together when no row has
// enough adjacent ones.
type HoldBody struct {
	Seats      []string `json:"seats,omitempty"`
	Section    string   `json:"section,omitempty"`
	Tier       string   `json:"tier,omitempty"`
	Quantity   int      `json:"quantity,omitempty"`
	AllowSplit bool     `json:"allow_split,omitempty"`
}

// PayBody is the body of POST /api/v1/holds/{id}/pay.
type PayBody struct {
	Card string `json:"card"`
}

// WSMessage is one WebSocket frame from the edge to the fan.
type WSMessage struct {
	Type   string       `json:"type"` // "status" or "error"
	Status *Status      `json:"status,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}
