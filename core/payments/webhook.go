package payments

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limits of the webhook receiver.
const (
	// maxWebhookBody bounds one event; the simulator's events are under
	// 2 KB.
	maxWebhookBody = 1 << 20
	// webhookDedupSize is how many handled event ids the receiver
	// remembers. At 100 events/s that is the last 100 s, longer than the
	// simulator's default retry window of about 30 s.
	webhookDedupSize = 10_000
)

// WebhookHandler returns an HTTP handler for the provider's webhooks. It
// rejects with 400 a request whose SignatureHeader is missing, does not
// match secret, or was signed more than WebhookTolerance away from now. It
// then decodes the event and calls onEvent with the request's context, and
// returns 200 only when onEvent returned nil. Any other status makes the
// provider deliver the event again later.
//
// Events may arrive late, more than once, and out of order: a
// payment_intent.payment_failed can follow a payment_intent.succeeded for
// the same intent, and charge.refunded can arrive before the success it
// refunds. The handler passes events on in the order they arrive. It drops
// an event whose id it already handled, but it remembers only the last
// webhookDedupSize ids and only in this process, so onEvent still receives
// duplicates after a restart or on another replica. The consumer must treat
// each event as a hint, apply it idempotently and monotonically (a late
// failure must never undo a capture, and a refund is final), and when in
// doubt read the intent's current state from the provider (Provider.Status).
//
// A copy of an event that arrives while the first copy is still in onEvent
// gets 409, so the provider retries it after the first copy settled.
func WebhookHandler(secret []byte, onEvent func(ctx context.Context, ev WebhookEvent) error) http.Handler {
	return &webhookHandler{secret: secret, onEvent: onEvent, seen: newEventSet(webhookDedupSize), now: time.Now}
}

type webhookHandler struct {
	secret  []byte
	onEvent func(ctx context.Context, ev WebhookEvent) error
	seen    *eventSet
	now     func() time.Time
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "webhook body larger than 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read webhook body: "+err.Error(), http.StatusBadRequest)
		return
	}
	ev, err := ParseWebhook(payload, r.Header.Get(SignatureHeader), h.secret, h.now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	switch h.seen.begin(ev.ID) {
	case eventDone:
		w.WriteHeader(http.StatusOK)
		return
	case eventInFlight:
		http.Error(w, "event "+ev.ID+" is being handled; retry later", http.StatusConflict)
		return
	}
	if err := h.onEvent(r.Context(), ev); err != nil {
		h.seen.fail(ev.ID)
		// The consumer logs its own failures; the provider only needs to
		// know to retry.
		http.Error(w, "event "+ev.ID+" not handled; retry later", http.StatusInternalServerError)
		return
	}
	h.seen.finish(ev.ID)
	w.WriteHeader(http.StatusOK)
}

// Event states in an eventSet.
const (
	eventNew = iota
	eventInFlight
	eventDone
)

// eventSet remembers the ids of events being handled and the last max
// handled ones, evicting the least recently handled. It is written here
// because the standard library has no LRU and the need is a map and a list.
type eventSet struct {
	max int

	mu       sync.Mutex // guards inFlight, handled and order
	inFlight map[string]bool
	handled  map[string]*list.Element
	order    *list.List // of ids, most recently handled first
}

func newEventSet(maxDone int) *eventSet {
	return &eventSet{max: maxDone, inFlight: map[string]bool{}, handled: map[string]*list.Element{}, order: list.New()}
}

// begin marks id in flight and returns eventNew, or returns the state that
// stops the caller from handling it.
func (s *eventSet) begin(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.handled[id]; ok {
		s.order.MoveToFront(e)
		return eventDone
	}
	if s.inFlight[id] {
		return eventInFlight
	}
	s.inFlight[id] = true
	return eventNew
}

func (s *eventSet) fail(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
}

func (s *eventSet) finish(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, id)
	s.handled[id] = s.order.PushFront(id)
	for s.order.Len() > s.max {
		oldest := s.order.Back()
		s.order.Remove(oldest)
		delete(s.handled, oldest.Value.(string))
	}
}
