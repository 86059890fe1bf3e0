package waitroom

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// Payment states.
const (
	PaymentPending       = "pending"        // recorded with the hold; charged or not, no outcome known yet
	PaymentCaptured      = "captured"       // money taken and the seats sold
	PaymentDeclined      = "declined"       // the provider declined; the seats were released
	PaymentVoid          = "void"           // never charged: the cart ended, or the provider had none when the checkout expired
	PaymentRefundPending = "refund_pending" // captured after the seats went back; a refund is owed
	PaymentRefunded      = "refunded"       // refunded in full
)

// Payment is one attempt to pay for a hold. Its ID is the idempotency key
// sent to the provider.
type Payment struct {
	ID          string    `json:"id"`
	HoldID      string    `json:"hold_id"`
	State       string    `json:"state"`
	AmountCents int64     `json:"amount_cents"`
	ProviderRef string    `json:"provider_ref,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random identifier with a prefix, such as "h_…" for a hold:
// 80 random bits in lowercase base32.
func NewID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))
}
