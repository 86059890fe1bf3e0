// Package waitroom holds Taquilla's domain: on-sales, shows, seats, holds and
// orders, the services that edge and core talk through, and the error codes
// that every layer shares. It imports only the standard library.
package waitroom

import (
	"errors"
	"fmt"
)

// Error codes. They are stable: the wire format and the HTTP status table map
// from them, so renaming one is a breaking change.
const (
	EINVALID      = "invalid"      // the request is malformed or a value is out of range
	EUNAUTHORIZED = "unauthorized" // missing, forged, expired or misused token
	ERATELIMITED  = "rate_limited" // too many requests from one client; retry later
	ENOTFOUND     = "not_found"    // the sale, show, hold or order does not exist
	ECONFLICT     = "conflict"     // a seat is taken, or the state changed under the request
	ESOLDOUT      = "sold_out"     // nothing left that matches the request
	EUNAVAILABLE  = "unavailable"  // a dependency is down or the outcome is unknown; retry later
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is a domain error: a stable code plus a message that is safe to show
// to the fan or the operator.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the first *Error in err's
// chain, and a generic text for any other error so internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Well-known conditions.
var (
	// ErrSoldOut means no seat matching the request is available.
	ErrSoldOut = &Error{Code: ESOLDOUT, Message: "no seats left that match the request"}
	// ErrSeatTaken means one of the requested seats is held or sold by someone else.
	ErrSeatTaken = &Error{Code: ECONFLICT, Message: "one or more of the requested seats are no longer available"}
	// ErrTokenExpired means the token's time window has passed.
	ErrTokenExpired = &Error{Code: EUNAUTHORIZED, Message: "token expired"}
	// ErrTokenInvalid means the token is malformed or its signature does not verify.
	ErrTokenInvalid = &Error{Code: EUNAUTHORIZED, Message: "token invalid"}
	// ErrNotAdmitted means the session has not been admitted from the queue, or
	// its admission ended.
	ErrNotAdmitted = &Error{Code: EUNAUTHORIZED, Message: "session not admitted to the store"}
	// ErrHoldExpired means the hold ran out of time and its seats went back on sale.
	ErrHoldExpired = &Error{Code: ECONFLICT, Message: "hold expired; the seats were released"}
	// ErrCommitUnknown means the database connection failed during COMMIT, so
	// the outcome is unknown. A retry with the same idempotency key is safe.
	ErrCommitUnknown = &Error{Code: EUNAVAILABLE, Message: "outcome unknown; retry with the same idempotency key"}
	// ErrLimitExceeded means the fan would exceed the per-event ticket limit.
	ErrLimitExceeded = &Error{Code: ECONFLICT, Message: "ticket limit per fan for this event exceeded"}
)
