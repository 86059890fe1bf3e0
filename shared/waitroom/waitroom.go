package waitroom

import (
	"context"
	"time"
)

// Seat states. A seat moves AVAILABLE → HELD → CHECKOUT → SOLD, and back to
// AVAILABLE when its hold expires, is released or its payment is declined.
const (
	SeatAvailable = "AVAILABLE"
	SeatHeld      = "HELD"
	SeatCheckout  = "CHECKOUT"
	SeatSold      = "SOLD"
)

// Hold states.
const (
	HoldHeld     = "HELD"     // in the fan's cart
	HoldCheckout = "CHECKOUT" // the fan is paying
	HoldSold     = "SOLD"     // paid; an order exists
	HoldReleased = "RELEASED" // released by the fan or by a declined payment
	HoldExpired  = "EXPIRED"  // released by the sweeper after its time ran out
)

// Section kinds.
const (
	SectionSeated   = "seated"   // numbered rows and seats
	SectionStanding = "standing" // general admission with a quota
)

// Sale is one on-sale: the queue and the inventory of one show.
type Sale struct {
	ID       string    `json:"id"`
	Tour     string    `json:"tour"`
	Name     string    `json:"name"`
	Venue    string    `json:"venue"`
	City     string    `json:"city"`
	StartsAt time.Time `json:"starts_at"`
	Capacity int       `json:"capacity"`
	// Available counts seats in state AVAILABLE when the sale was read.
	Available int `json:"available"`
}

// Tier is a price tier of a show.
type Tier struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}

// Section is an area of a venue: rows of numbered seats or a standing area.
type Section struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Tier      string `json:"tier"`
	Capacity  int    `json:"capacity"`
	Available int    `json:"available"`
	// Rank orders sections by closeness to the stage; lower is closer.
	Rank int `json:"rank"`
}

// SeatMap lists a show's tiers and sections with their availability.
type SeatMap struct {
	Sale     Sale      `json:"sale"`
	Tiers    []Tier    `json:"tiers"`
	Sections []Section `json:"sections"`
}

// Seat is one sellable place: a numbered seat, or one place of a standing quota
// (Row empty, Number the place's index).
type Seat struct {
	ID         string `json:"id"`
	Section    string `json:"section"`
	Row        string `json:"row,omitempty"`
	Number     int    `json:"number"`
	PriceCents int64  `json:"price_cents"`
}

// Hold is a set of seats reserved for one fan session. Only that session
// may check it out, pay for it or release it.
type Hold struct {
	ID      string `json:"id"`
	SaleID  string `json:"sale_id"`
	Session string `json:"session"`
	// Fan is the account that the hold's places count against for the
	// per-fan ticket limit. It is not sent to clients.
	Fan        string    `json:"-"`
	State      string    `json:"state"`
	Seats      []Seat    `json:"seats"`
	TotalCents int64     `json:"total_cents"`
	ExpiresAt  time.Time `json:"expires_at"`
	OrderID    string    `json:"order_id,omitempty"`
}

// Order states.
const (
	OrderPaid     = "PAID"
	OrderRefunded = "REFUNDED"
)

// Order is a paid purchase.
type Order struct {
	ID         string    `json:"id"`
	SaleID     string    `json:"sale_id"`
	Session    string    `json:"session"`
	HoldID     string    `json:"hold_id"`
	State      string    `json:"state"`
	Seats      []Seat    `json:"seats"`
	TotalCents int64     `json:"total_cents"`
	PaymentID  string    `json:"payment_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// HoldRequest asks for seats: either the listed seat IDs, or Quantity
// adjacent seats (best available, nearest the stage) in Section or in any
// section of the price tier Tier.
type HoldRequest struct {
	SaleID string
	// Session owns the hold: only it may check out, pay or release.
	Session string
	// Fan is the account that the per-fan ticket limit counts against, the
	// same for every session of one fan (token.Claims.Account). Empty means
	// the session's own account.
	Fan            string
	IdempotencyKey string
	SeatIDs        []string
	Section        string
	Tier           string
	Quantity       int
	// AllowSplit lets best available fall back to seats that are not all
	// together when no row has Quantity adjacent ones.
	AllowSplit bool
}

// PayRequest pays for a hold in checkout.
type PayRequest struct {
	HoldID         string
	Session        string
	IdempotencyKey string
	// Card is the simulated card number; see the payments package for the
	// numbers that decline.
	Card string
}

// PayResult is the outcome of a payment. Exactly one of Order and Declined is
// set on success.
type PayResult struct {
	Hold     Hold   `json:"hold"`
	Order    *Order `json:"order,omitempty"`
	Declined string `json:"declined,omitempty"`
}

// Inventory sells seats. Every method that changes state is atomic and
// idempotent by its request's idempotency key.
type Inventory interface {
	// FindSales lists the on-sales. No error codes beyond EINTERNAL.
	FindSales(ctx context.Context) ([]Sale, error)
	// FindSeatMap returns a show's sections and availability. ENOTFOUND.
	FindSeatMap(ctx context.Context, saleID string) (*SeatMap, error)
	// Hold reserves seats for a session. EINVALID, ENOTFOUND, ECONFLICT,
	// ESOLDOUT, EUNAVAILABLE.
	Hold(ctx context.Context, req HoldRequest) (*Hold, error)
	// Checkout moves a hold into payment. ENOTFOUND, ECONFLICT (expired).
	Checkout(ctx context.Context, holdID, session string) (*Hold, error)
	// Pay charges the fan and sells the seats, or releases them when the
	// payment is declined. ENOTFOUND, ECONFLICT, EUNAVAILABLE.
	Pay(ctx context.Context, req PayRequest) (*PayResult, error)
	// Release gives a held seat set back. ENOTFOUND, ECONFLICT.
	Release(ctx context.Context, holdID, session string) (*Hold, error)
	// FindHoldByID returns a hold of the session. ENOTFOUND.
	FindHoldByID(ctx context.Context, holdID, session string) (*Hold, error)
	// FindOrderByID returns an order of the session. ENOTFOUND.
	FindOrderByID(ctx context.Context, orderID, session string) (*Order, error)
	// CancelOrder cancels a paid order: the seats go back on sale once and
	// the payment is refunded. ENOTFOUND.
	CancelOrder(ctx context.Context, orderID, session string) (*Order, error)
}
