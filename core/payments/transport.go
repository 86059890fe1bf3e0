package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/taquilla/taquilla/shared/logkey"
)

// maxResponseBody bounds what the client reads of one response.
const maxResponseBody = 1 << 20

// call sends one request and decodes a 2xx body into out. It repeats a 429
// after its Retry-After, at most MaxRateLimitRetries times and within ctx.
// A 4xx other than 429 returns an *APIError. Every other failure (5xx, 429
// retries spent, timeout, connection error, open breaker) returns an error
// that wraps ErrUnavailable, and an *APIError when the provider responded.
func (h *HTTP) call(ctx context.Context, method, path string, form url.Values, idempotencyKey string, out any) error {
	for attempt := 1; ; attempt++ {
		err := h.callOnce(ctx, method, path, form, idempotencyKey, out)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
			return err
		}
		if attempt > h.cfg.MaxRateLimitRetries {
			return fmt.Errorf("%s %s: still rate limited after %d attempts: %w", method, pathOnly(path), attempt, err)
		}

		wait := apiErr.RetryAfter
		if wait == 0 {
			wait = time.Second // no usable Retry-After, so wait its smallest value
		}
		wait = min(wait, h.cfg.MaxRetryAfter)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("%s %s: rate limited, and Retry-After %v ends after the deadline: %w", method, pathOnly(path), wait, err)
		}
		h.log.Debug("payment provider rate limited; retrying", logkey.Path, pathOnly(path), logkey.Attempt, attempt, logkey.Detail, "retry after "+wait.String())
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s %s: wait for Retry-After: %w: %w", method, pathOnly(path), ErrUnavailable, err)
		}
	}
}

// callOnce sends one request through the limiter and the breaker.
func (h *HTTP) callOnce(ctx context.Context, method, path string, form url.Values, idempotencyKey string, out any) error {
	_, err := h.breaker.Execute(func() (struct{}, error) {
		if err := h.limiter.Wait(ctx); err != nil {
			return struct{}{}, limiterError{err}
		}
		return struct{}{}, h.roundTrip(ctx, method, path, form, idempotencyKey, out)
	})
	if err == nil {
		return nil
	}

	var apiErr *APIError
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return fmt.Errorf("%s %s: %w: %w", method, pathOnly(path), ErrUnavailable, ErrCircuitOpen)
	case errors.As(err, &apiErr) && isSuccessful(err):
		return fmt.Errorf("%s %s: %w", method, pathOnly(path), err) // the provider rejected the request
	}
	return fmt.Errorf("%s %s: %w: %w", method, pathOnly(path), ErrUnavailable, err)
}

// roundTrip sends the request and maps a non-2xx response to *APIError.
func (h *HTTP) roundTrip(ctx context.Context, method, path string, form url.Values, idempotencyKey string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	if h.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.cfg.APIKey)
	}

	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
		}
		return nil
	}

	apiErr := &APIError{StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var er ErrorResponse
	if json.Unmarshal(data, &er) == nil && er.Error.Type != "" {
		apiErr.ErrorBody = er.Error
	} else {
		apiErr.Type, apiErr.Message = "api_error", strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	return apiErr
}

// isSuccessful reports which results count as a healthy provider for the
// breaker: a 2xx, and a 4xx other than 429, because then the provider
// responded and rejected the request itself (a 402 decline, a 404, an
// idempotency mismatch). A 429 counts as a failure, so a provider that keeps shedding
// load gets the same rest as one that is down.
func isSuccessful(err error) bool {
	if err == nil {
		return true
	}
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 &&
		apiErr.StatusCode != http.StatusTooManyRequests
}

// isExcluded keeps out of the breaker's counts the requests that never
// reached the provider or that the caller itself abandoned.
func isExcluded(err error) bool {
	var le limiterError
	return errors.As(err, &le) || errors.Is(err, context.Canceled)
}

// limiterError is a failed wait for the client-side rate limiter: ctx ended,
// or its deadline comes before the next token.
type limiterError struct{ err error }

func (e limiterError) Error() string { return "wait for rate limiter: " + e.err.Error() }
func (e limiterError) Unwrap() error { return e.err }

// parseRetryAfter reads a Retry-After given in seconds, returning 0 when
// absent or invalid. RFC 9110 also allows an HTTP date, which the
// simulator never sends; a date reads as absent.
func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	return time.Duration(min(secs, 86400)) * time.Second // a day is plenty and cannot overflow
}

// pathOnly drops the query from error text; the caller's context already
// names the key it looked up.
func pathOnly(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}
