package payments

import (
	"fmt"
	"time"
)

// This file holds the JSON objects of the provider's HTTP API: a subset of
// Stripe's PaymentIntents API (API v1) that the simulator in simserver serves
// and the HTTP client speaks. Field names follow Stripe's.

// Payment intent statuses, as Stripe names them.
const (
	IntentProcessing            = "processing"
	IntentSucceeded             = "succeeded"
	IntentRequiresPaymentMethod = "requires_payment_method" // the payment failed, for example declined
	IntentCanceled              = "canceled"
)

// Webhook event types.
const (
	EventPaymentSucceeded = "payment_intent.succeeded"
	EventPaymentFailed    = "payment_intent.payment_failed"
	EventPaymentCanceled  = "payment_intent.canceled"
	EventChargeRefunded   = "charge.refunded"
)

// MetadataPaymentID is the metadata key under which the HTTP client stores
// the core's payment id (the idempotency key) on every intent it creates, so
// a webhook consumer can map an intent back to its payment.
const MetadataPaymentID = "payment_id"

// PaymentIntent is one attempt to take money from a card.
type PaymentIntent struct {
	ID     string `json:"id"`
	Object string `json:"object"` // always "payment_intent"
	// Amount is in the currency's minor unit (cents).
	Amount         int64  `json:"amount"`
	AmountReceived int64  `json:"amount_received"`
	Currency       string `json:"currency"`
	Status         string `json:"status"`
	// Created is a Unix time in seconds.
	Created      int64  `json:"created"`
	LatestCharge string `json:"latest_charge,omitempty"`
	// AmountRefunded sums the refunds of the intent. Stripe keeps it on the
	// charge object, but the simulator puts it on the intent so that one
	// object shows the whole state.
	AmountRefunded     int64             `json:"amount_refunded"`
	LastPaymentError   *ErrorBody        `json:"last_payment_error,omitempty"`
	CancellationReason string            `json:"cancellation_reason,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
}

// Refund gives back part or all of a succeeded intent's amount.
type Refund struct {
	ID            string `json:"id"`
	Object        string `json:"object"` // always "refund"
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency"`
	PaymentIntent string `json:"payment_intent"`
	Status        string `json:"status"`
	Created       int64  `json:"created"`
}

// ErrorBody is the error object of the API, sent as {"error": {...}} with a
// non-2xx status, and as an intent's last_payment_error.
type ErrorBody struct {
	// Type is api_error, card_error, idempotency_error or
	// invalid_request_error.
	Type        string `json:"type"`
	Code        string `json:"code,omitempty"`
	DeclineCode string `json:"decline_code,omitempty"`
	Message     string `json:"message,omitempty"`
	Param       string `json:"param,omitempty"`
	// PaymentIntent is the declined intent of a card_error.
	PaymentIntent *PaymentIntent `json:"payment_intent,omitempty"`
}

// ErrorResponse is the body of every non-2xx response.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// WebhookEvent is a notification that the provider POSTs to the webhook
// URL when an intent settles or is refunded.
type WebhookEvent struct {
	ID     string `json:"id"`
	Object string `json:"object"` // always "event"
	Type   string `json:"type"`
	// Created is a Unix time in seconds.
	Created int64     `json:"created"`
	Data    EventData `json:"data"`
}

// EventData holds the object an event is about: the intent as it was when
// the event was created, which may be older than its current state.
type EventData struct {
	Object PaymentIntent `json:"object"`
}

// APIError is a non-2xx response of the provider.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	ErrorBody
	// RetryAfter is the Retry-After header of a 429 or 503, zero when
	// absent.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("provider returned %d %s", e.StatusCode, e.Type)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// resultOf maps an intent to the status the core understands.
func resultOf(pi *PaymentIntent) Result {
	res := Result{Ref: pi.ID}
	switch pi.Status {
	case IntentSucceeded:
		res.Status = StatusCaptured
		if pi.AmountRefunded >= pi.AmountReceived && pi.AmountReceived > 0 {
			res.Status = StatusRefunded
		}
	case IntentRequiresPaymentMethod:
		res.Status = StatusDeclined
		res.DeclineCode = "card_declined"
		if e := pi.LastPaymentError; e != nil && e.DeclineCode != "" {
			res.DeclineCode = e.DeclineCode
		} else if e != nil && e.Code != "" {
			res.DeclineCode = e.Code
		}
	case IntentCanceled:
		// No money moved, which is what the core means by declined.
		res.Status = StatusDeclined
		res.DeclineCode = "canceled"
	default:
		res.Status = StatusProcessing
	}
	return res
}
