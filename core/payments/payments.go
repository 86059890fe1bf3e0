// Package payments defines the payment provider interface the core charges
// through, and a simulated provider for development, tests and benchmarks.
package payments

import (
	"context"
	"errors"
)

// Charge statuses a provider reports.
const (
	StatusCaptured   = "captured"   // the money was taken
	StatusDeclined   = "declined"   // the card was declined; nothing was taken
	StatusProcessing = "processing" // the charge is still running
	StatusNone       = "none"       // the provider holds no charge for the key
	StatusRefunded   = "refunded"   // captured, then refunded
)

// Result is the state of one charge as the provider reports it.
type Result struct {
	Status string
	// Ref is the provider's id of the charge.
	Ref string
	// DeclineCode is the reason a charge was declined, such as "card_declined".
	DeclineCode string
}

// Provider charges fans. Every call is idempotent by key: charging the same
// key twice takes money once and returns the first outcome.
type Provider interface {
	// Charge takes amountCents from card. It returns an error when the
	// outcome is unknown (timeout, provider down), and Status reports it later.
	Charge(ctx context.Context, key string, amountCents int64, card string) (Result, error)
	// Status returns the state of the charge with key.
	Status(ctx context.Context, key string) (Result, error)
	// Refund gives the money of a captured charge back.
	Refund(ctx context.Context, key string) error
}

// ErrUnavailable means the provider did not respond, so the outcome of the
// call is unknown.
var ErrUnavailable = errors.New("payment provider unavailable")
