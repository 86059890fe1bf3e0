package wire

import (
	"encoding/json"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// Inventory service subjects. The core serves them as a NATS micro service
// named InventoryService; edges send requests to them.
const (
	InventoryService = "taquilla-inventory"
	SubjectSales     = "taq.inv.sales"
	SubjectSeatMap   = "taq.inv.seatmap"
	SubjectHold      = "taq.inv.hold"
	SubjectCheckout  = "taq.inv.checkout"
	SubjectPay       = "taq.inv.pay"
	SubjectRelease   = "taq.inv.release"
	SubjectHoldGet   = "taq.inv.hold.get"
	SubjectOrderGet  = "taq.inv.order.get"
	SubjectCancel    = "taq.inv.order.cancel"
)

// StoreRequest is the body of every inventory request. Token is the fan's
// admission token (or, for reads of an order, the queue ticket); the core
// verifies it again, so a compromised edge cannot sell to a session that was
// never admitted.
type StoreRequest struct {
	V              int      `json:"v"`
	Token          string   `json:"token,omitempty"`
	Sale           string   `json:"sale,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	HoldID         string   `json:"hold_id,omitempty"`
	OrderID        string   `json:"order_id,omitempty"`
	Seats          []string `json:"seats,omitempty"`
	Section        string   `json:"section,omitempty"`
	Tier           string   `json:"tier,omitempty"`
	Quantity       int      `json:"quantity,omitempty"`
	AllowSplit     bool     `json:"allow_split,omitempty"`
	Card           string   `json:"card,omitempty"`
}

// StoreReply is the body of every inventory reply: Data on success, Error
// otherwise.
type StoreReply struct {
	V     int             `json:"v"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error *ErrorDetail    `json:"error,omitempty"`
}

// Err returns the reply's error as a *waitroom.Error, or nil.
func (r StoreReply) Err() error {
	if r.Error == nil {
		return nil
	}
	return &waitroom.Error{Code: r.Error.Code, Message: r.Error.Message}
}
