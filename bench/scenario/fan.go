// Package scenario simulates an on-sale with real HTTP and WebSocket
// clients: fans that solve the proof of work, join, wait on a WebSocket,
// shop, pay or get declined. It records what each fan was told, so the
// checker can compare it with the database afterwards.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Told is what one fan was told by the system.
type Told struct {
	Key     string
	Session string
	Ticket  string
	// Joined is true once a join was acknowledged with a ticket.
	Joined bool
	// Admitted is true once the WebSocket or a poll said so.
	Admitted bool
	// Order is the order the fan was told they have, with its seats.
	Order *waitroom.Order
	// Declined counts payments declined.
	Declined int
	// Outcome is the end of the fan's run: bought, sold_out, declined,
	// closed, gave_up or error.
	Outcome string
	Err     error

	JoinLatency time.Duration
	WaitTime    time.Duration
	// Retries counts requests repeated after 429 or 503 responses.
	Retries int
}

// fan is one simulated fan.
type fan struct {
	c       *client.Client
	sale    string
	rng     *rand.Rand
	told    *Told
	soldOut <-chan struct{} // closed when every seat of the sale is sold
	qty     int
}

func (f *fan) run(ctx context.Context) {
	t := f.told
	start := time.Now()
	var join *wire.JoinResponse
	err := f.retry(ctx, func() error {
		var err error
		join, err = f.c.Join(ctx, f.sale, t.Key)
		return err
	})
	if err != nil {
		if isCode(err, waitroom.ESOLDOUT) {
			t.Outcome = "closed"
			return
		}
		t.Outcome, t.Err = "error", fmt.Errorf("join: %w", err)
		return
	}
	t.JoinLatency = time.Since(start)
	t.Joined, t.Session, t.Ticket = true, join.Status.Session, join.Ticket

	admission, err := f.wait(ctx)
	if err != nil || admission == "" {
		return
	}
	t.Admitted = true
	t.WaitTime = time.Since(start)
	f.shop(ctx, admission)
}

// wait follows the WebSocket until the fan is admitted, the sale sells out,
// or ctx ends. It returns the admission token.
func (f *fan) wait(ctx context.Context) (string, error) {
	t := f.told
	sock, err := f.c.Dial(ctx, t.Ticket)
	if err != nil {
		t.Outcome, t.Err = "error", err
		return "", err
	}
	defer sock.Close()
	frames := make(chan wire.Status)
	errs := make(chan error, 1)
	go func() {
		for {
			st, err := sock.Next(time.Now().Add(time.Minute))
			if err != nil {
				errs <- err
				return
			}
			select {
			case frames <- st:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			t.Outcome = "gave_up"
			return "", nil
		case <-f.soldOut:
			t.Outcome = "sold_out"
			return "", nil
		case err := <-errs:
			t.Outcome, t.Err = "error", fmt.Errorf("websocket: %w", err)
			return "", err
		case st := <-frames:
			switch st.State {
			case "admitted":
				if st.Admission != nil {
					return st.Admission.Token, nil
				}
			case "left", "done", "unknown":
				t.Outcome, t.Err = "error", fmt.Errorf("unexpected state %s while waiting", st.State)
				return "", t.Err
			}
		}
	}
}

// shop holds the fan's quantity in a section that has enough places,
// checks out and pays; a decline releases the seats and the fan tries once
// more with another card.
func (f *fan) shop(ctx context.Context, admission string) {
	t := f.told
	for attempt := 0; ctx.Err() == nil; attempt++ {
		select {
		case <-f.soldOut:
			t.Outcome = "sold_out"
			return
		default:
		}
		h, err := f.hold(ctx, admission, attempt)
		if err != nil {
			if isCode(err, waitroom.ESOLDOUT) || isCode(err, waitroom.ECONFLICT) {
				// Everything left is in other carts; some may come back.
				sleep(ctx, 300*time.Millisecond)
				continue
			}
			if isCode(err, waitroom.EUNAUTHORIZED) {
				t.Outcome = "gave_up" // the admission ended
				return
			}
			t.Outcome, t.Err = "error", fmt.Errorf("hold: %w", err)
			return
		}
		if err := f.retry(ctx, func() error { _, err := f.c.Checkout(ctx, admission, h.ID); return err }); err != nil {
			t.Outcome, t.Err = "error", fmt.Errorf("checkout: %w", err)
			return
		}
		var res *waitroom.PayResult
		if err := f.retry(ctx, func() error {
			var err error
			res, err = f.c.Pay(ctx, admission, h.ID, "4242424242424242")
			return err
		}); err != nil {
			t.Outcome, t.Err = "error", fmt.Errorf("pay: %w", err)
			return
		}
		if res.Order != nil {
			t.Order, t.Outcome = res.Order, "bought"
			return
		}
		t.Declined++
		if t.Declined >= 2 {
			t.Outcome = "declined"
			return
		}
	}
	t.Outcome = "gave_up"
}

func (f *fan) hold(ctx context.Context, admission string, attempt int) (*waitroom.Hold, error) {
	var m *waitroom.SeatMap
	if err := f.retry(ctx, func() error {
		var err error
		m, err = f.c.SeatMap(ctx, f.sale, admission)
		return err
	}); err != nil {
		return nil, err
	}
	// Pick a random section with enough places left, as a fan would.
	var fits []string
	for _, s := range m.Sections {
		if s.Available >= f.qty {
			fits = append(fits, s.ID)
		}
	}
	if len(fits) == 0 {
		return nil, waitroom.ErrSoldOut
	}
	section := fits[f.rng.IntN(len(fits))]
	var h *waitroom.Hold
	key := f.told.Key + "-hold-" + strconv.Itoa(attempt)
	err := f.retry(ctx, func() error {
		var err error
		h, err = f.c.Hold(ctx, admission, key, wire.HoldBody{Section: section, Quantity: f.qty})
		return err
	})
	return h, err
}

// retry repeats fn on 429 and 503, waiting for the Retry-After delay, at
// most 20 times.
func (f *fan) retry(ctx context.Context, fn func() error) error {
	for i := 0; ; i++ {
		err := fn()
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || i >= 20 ||
			(apiErr.Status != http.StatusTooManyRequests && apiErr.Status != http.StatusServiceUnavailable) {
			return err
		}
		f.told.Retries++
		wait := time.Second
		if s, err := strconv.Atoi(apiErr.RetryAfter); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		sleep(ctx, wait/2+time.Duration(f.rng.Int64N(int64(wait))))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func isCode(err error, code string) bool {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == code
	}
	return waitroom.ErrorCode(err) == code
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
