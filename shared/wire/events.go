package wire

import "time"

// Inventory event kinds, published from the core's transactional outbox on
// the subject EventSubject(sale, kind) of the stream EventStream.
const (
	EventSold     = "sold"     // an order was paid; its seats are sold
	EventReleased = "released" // a hold ended without a sale; its seats are back on sale
	EventRefunded = "refunded" // money was given back
)

// EventStream is the JetStream stream of inventory events.
const EventStream = "INVENTORY_EVENTS"

// EventSubject returns the subject of an inventory event.
func EventSubject(saleID, kind string) string {
	return "taq.events." + saleID + "." + kind
}

// EventSubjects is the wildcard that the event stream captures.
const EventSubjects = "taq.events.>"

// InventoryEvent is one change of the inventory. ID is unique per change and
// is the JetStream message id: consumers de-duplicate by it.
type InventoryEvent struct {
	V           int      `json:"v"`
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	SaleID      string   `json:"sale_id"`
	HoldID      string   `json:"hold_id,omitempty"`
	OrderID     string   `json:"order_id,omitempty"`
	PaymentID   string   `json:"payment_id,omitempty"`
	Seats       []string `json:"seats,omitempty"`
	AmountCents int64    `json:"amount_cents,omitempty"`
	// Reason says why seats were released: RELEASED (by the fan or a
	// declined payment) or EXPIRED.
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}
