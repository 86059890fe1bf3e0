package simserver

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/taquilla/taquilla/core/payments"
)

// Request limits, as Stripe documents them where it does.
const (
	maxRequestBody       = 64 << 10
	maxIdempotencyKey    = 255
	maxMetadataKeys      = 50
	maxMetadataKeyLength = 40
	maxMetadataValue     = 500
)

// intent is a stored payment intent. Its pi changes only under Server.mu.
// A copy of pi may be read without the lock, because its Metadata and
// LastPaymentError are never changed after they are set.
type intent struct {
	pi payments.PaymentIntent
	// fingerprint identifies the create parameters, to reject a reuse of
	// the idempotency key with other ones.
	fingerprint string
	// decline is the failure chosen at creation, nil to succeed.
	decline *payments.ErrorBody
}

type refundRecord struct {
	refund      payments.Refund
	fingerprint string
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payment_intents", s.createIntent)
	mux.HandleFunc("GET /v1/payment_intents", s.findIntentByKey)
	mux.HandleFunc("GET /v1/payment_intents/{id}", s.getIntent)
	mux.HandleFunc("POST /v1/payment_intents/{id}/cancel", s.cancelIntent)
	mux.HandleFunc("POST /v1/refunds", s.createRefund)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, payments.ErrorBody{Type: "invalid_request_error",
			Message: fmt.Sprintf("unrecognized request URL (%s %s)", r.Method, r.URL.Path)})
	})
	return s.gate(mux)
}

// gate applies the outage switch, the rate limit and the API key, in that
// order, before any endpoint.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			if s.cfg.HangWhenDown {
				// The request context ends when the client gives up or
				// at Close, because it derives from s.ctx.
				<-r.Context().Done()
			}
			writeError(w, http.StatusServiceUnavailable, payments.ErrorBody{Type: "api_error",
				Message: "the payment simulator is down; SetDown(false) brings it back"})
			return
		}
		if s.limiter != nil {
			res := s.limiter.Reserve()
			if delay := res.Delay(); !res.OK() || delay > 0 {
				res.Cancel()
				s.rateLimited.Add(1)
				// Retry-After takes whole seconds (RFC 9110), so round up.
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(delay.Seconds())))))
				writeError(w, http.StatusTooManyRequests, payments.ErrorBody{Type: "invalid_request_error", Code: "rate_limit",
					Message: "too many requests; retry after the Retry-After seconds"})
				return
			}
		}
		if s.cfg.APIKey != "" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+s.cfg.APIKey)) != 1 {
			writeError(w, http.StatusUnauthorized, payments.ErrorBody{Type: "invalid_request_error",
				Message: "invalid API key; send Authorization: Bearer <key>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) createIntent(w http.ResponseWriter, r *http.Request) {
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	params, perr := readParams(w, r, "amount", "currency", "card", "confirm")
	if perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	amount, perr := positiveAmount(params, true)
	if perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	currency, card := params["currency"], strings.ReplaceAll(params["card"], " ", "")
	switch {
	case currency == "":
		writeError(w, http.StatusBadRequest, missing("currency"))
		return
	case len(currency) != 3 || strings.ToLower(currency) != currency:
		writeError(w, http.StatusBadRequest, invalid("currency", "invalid_currency", "currency must be a lowercase ISO 4217 code such as eur"))
		return
	case card == "":
		writeError(w, http.StatusBadRequest, missing("card"))
		return
	}
	if c, ok := params["confirm"]; ok && c != "true" {
		writeError(w, http.StatusBadRequest, invalid("confirm", "parameter_invalid_boolean",
			"the simulator creates and confirms in one step; omit confirm or set it to true"))
		return
	}
	params["card"] = card
	fp := fingerprint(params)

	s.mu.Lock()
	if in, ok := s.byKey[key]; ok && key != "" {
		pi := in.pi
		s.mu.Unlock()
		if in.fingerprint != fp {
			writeError(w, http.StatusBadRequest, idempotencyMismatch(key, "/v1/payment_intents"))
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeIntent(w, pi)
		return
	}
	in := &intent{
		pi: payments.PaymentIntent{ID: newID("pi"), Object: "payment_intent", Amount: amount, Currency: currency,
			Status: payments.IntentProcessing, Created: time.Now().Unix(), Metadata: metadataOf(params)},
		fingerprint: fp,
		decline:     s.chooseDeclineLocked(card),
	}
	s.intents[in.pi.ID] = in
	if key != "" {
		s.byKey[key] = in
	}
	if d := s.jitterLocked(s.cfg.Latency, s.cfg.LatencyJitter); d == 0 {
		s.settleLocked(in)
	} else {
		s.goLocked(func() { s.settleAfter(in, d) })
	}
	pi := in.pi
	s.mu.Unlock()
	writeIntent(w, pi)
}

// chooseDeclineLocked decides at creation how an intent will settle: an
// invalid number fails as incorrect_number, payments.DeclineCard as
// generic_decline, and other cards as insufficient_funds at
// Config.DeclineRate. s.mu must be held.
func (s *Server) chooseDeclineLocked(card string) *payments.ErrorBody {
	switch {
	case !validCardNumber(card):
		return &payments.ErrorBody{Type: "card_error", Code: "incorrect_number", Param: "card", Message: "Your card number is incorrect."}
	case card == payments.DeclineCard:
		return &payments.ErrorBody{Type: "card_error", Code: "card_declined", DeclineCode: "generic_decline", Message: "Your card was declined."}
	case s.chanceLocked(s.cfg.DeclineRate):
		return &payments.ErrorBody{Type: "card_error", Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}
	}
	return nil
}

// settleAfter settles in after d, unless the server closes first.
func (s *Server) settleAfter(in *intent, d time.Duration) {
	if sleep(s.ctx, d) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(in)
}

// settleLocked moves a processing intent to succeeded or
// requires_payment_method and emits the event. An intent canceled meanwhile
// stays canceled. s.mu must be held.
func (s *Server) settleLocked(in *intent) {
	if in.pi.Status != payments.IntentProcessing {
		return
	}
	if in.decline != nil {
		in.pi.Status = payments.IntentRequiresPaymentMethod
		in.pi.LastPaymentError = in.decline
		s.emitLocked(payments.EventPaymentFailed, in.pi)
		return
	}
	in.pi.Status = payments.IntentSucceeded
	in.pi.AmountReceived = in.pi.Amount
	in.pi.LatestCharge = newID("ch")
	s.capturedCents += in.pi.Amount
	s.emitLocked(payments.EventPaymentSucceeded, in.pi)
}

// findIntentByKey serves the simulator's lookup by idempotency key.
func (s *Server) findIntentByKey(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("idempotency_key") {
		writeError(w, http.StatusBadRequest, missing("idempotency_key"))
		return
	}
	s.mu.Lock()
	in, ok := s.byKey[q.Get("idempotency_key")]
	var pi payments.PaymentIntent
	if ok {
		pi = in.pi
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, payments.ErrorBody{Type: "invalid_request_error", Code: "resource_missing",
			Param: "idempotency_key", Message: "no payment intent was created with this idempotency key"})
		return
	}
	writeJSON(w, http.StatusOK, pi)
}

func (s *Server) getIntent(w http.ResponseWriter, r *http.Request) {
	pi, ok := s.findIntent(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, noSuchIntent(r.PathValue("id"), "id"))
		return
	}
	writeJSON(w, http.StatusOK, pi)
}

func (s *Server) findIntent(id string) (payments.PaymentIntent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.intents[id]
	if !ok {
		return payments.PaymentIntent{}, false
	}
	return in.pi, true
}

// cancelIntent cancels an intent that is processing or failed; Stripe also
// refuses to cancel a succeeded one.
func (s *Server) cancelIntent(w http.ResponseWriter, r *http.Request) {
	params, perr := readParams(w, r, "cancellation_reason")
	if perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	in, ok := s.intents[id]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, noSuchIntent(id, "id"))
		return
	}
	if in.pi.Status != payments.IntentProcessing && in.pi.Status != payments.IntentRequiresPaymentMethod {
		status := in.pi.Status
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, unexpectedState(id, status, "cancel"))
		return
	}
	in.pi.Status = payments.IntentCanceled
	in.pi.CancellationReason = cmp.Or(params["cancellation_reason"], "requested_by_customer")
	s.emitLocked(payments.EventPaymentCanceled, in.pi)
	pi := in.pi
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, pi)
}

func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	key, ok := idempotencyKey(w, r)
	if !ok {
		return
	}
	params, perr := readParams(w, r, "payment_intent", "amount")
	if perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	id := params["payment_intent"]
	if id == "" {
		writeError(w, http.StatusBadRequest, missing("payment_intent"))
		return
	}
	amount, perr := positiveAmount(params, false)
	if perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	fp := fingerprint(params)

	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.refunds[key]; ok && key != "" {
		if rec.fingerprint != fp {
			writeError(w, http.StatusBadRequest, idempotencyMismatch(key, "/v1/refunds"))
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, http.StatusOK, rec.refund)
		return
	}
	in, ok := s.intents[id]
	if !ok {
		writeError(w, http.StatusBadRequest, noSuchIntent(id, "payment_intent"))
		return
	}
	if in.pi.Status != payments.IntentSucceeded {
		writeError(w, http.StatusBadRequest, unexpectedState(id, in.pi.Status, "refund"))
		return
	}
	remaining := in.pi.AmountReceived - in.pi.AmountRefunded
	switch {
	case remaining == 0:
		writeError(w, http.StatusBadRequest, payments.ErrorBody{Type: "invalid_request_error", Code: "charge_already_refunded",
			Message: fmt.Sprintf("charge %s of payment intent %s has already been refunded", in.pi.LatestCharge, id)})
		return
	case amount == 0:
		amount = remaining
	case amount > remaining:
		writeError(w, http.StatusBadRequest, invalid("amount", "amount_too_large",
			fmt.Sprintf("refund amount %d is greater than the %d left to refund", amount, remaining)))
		return
	}

	in.pi.AmountRefunded += amount
	s.refundedCents += amount
	s.refundCount++
	re := payments.Refund{ID: newID("re"), Object: "refund", Amount: amount, Currency: in.pi.Currency,
		PaymentIntent: id, Status: "succeeded", Created: time.Now().Unix()}
	if key != "" {
		s.refunds[key] = &refundRecord{refund: re, fingerprint: fp}
	}
	s.emitLocked(payments.EventChargeRefunded, in.pi)
	writeJSON(w, http.StatusOK, re)
}

// idempotencyKey returns the Idempotency-Key header, or writes 400 and
// returns false when it is too long.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		writeError(w, http.StatusBadRequest, payments.ErrorBody{Type: "invalid_request_error",
			Message: fmt.Sprintf("Idempotency-Key of %d characters is longer than %d", len(key), maxIdempotencyKey)})
		return "", false
	}
	return key, true
}

// readParams returns the request's parameters from a form or, with
// Content-Type application/json, from a JSON object. Metadata becomes
// "metadata[k]" keys, as in Stripe's form encoding. A parameter not in
// allowed and not metadata is rejected, as Stripe does.
func readParams(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]string, *payments.ErrorBody) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	params := map[string]string{}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		if err := readJSONParams(r, params); err != nil {
			return nil, err
		}
	} else {
		if err := r.ParseForm(); err != nil {
			e := invalid("", "", "invalid form body: "+err.Error())
			return nil, &e
		}
		for k, vs := range r.PostForm {
			if len(vs) != 1 {
				e := invalid(k, "", fmt.Sprintf("parameter %s given %d times", k, len(vs)))
				return nil, &e
			}
			params[k] = vs[0]
		}
	}

	metadata := 0
	for k, v := range params {
		if mk, ok := metadataKey(k); ok {
			metadata++
			if mk == "" || len(mk) > maxMetadataKeyLength || len(v) > maxMetadataValue || metadata > maxMetadataKeys {
				e := invalid(k, "", fmt.Sprintf("metadata allows %d keys of 1 to %d characters with values of at most %d",
					maxMetadataKeys, maxMetadataKeyLength, maxMetadataValue))
				return nil, &e
			}
			continue
		}
		if !slices.Contains(allowed, k) {
			e := invalid(k, "parameter_unknown", fmt.Sprintf("received unknown parameter: %s", k))
			return nil, &e
		}
	}
	return params, nil
}

func readJSONParams(r *http.Request, params map[string]string) *payments.ErrorBody {
	var raw map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		e := invalid("", "", "invalid JSON body: "+err.Error())
		return &e
	}
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			params[k] = v
		case json.Number:
			params[k] = v.String()
		case bool:
			params[k] = strconv.FormatBool(v)
		case map[string]any:
			if k != "metadata" {
				e := invalid(k, "", "only metadata may be an object")
				return &e
			}
			for mk, mv := range v {
				s, ok := mv.(string)
				if !ok {
					e := invalid("metadata["+mk+"]", "", "metadata values must be strings")
					return &e
				}
				params["metadata["+mk+"]"] = s
			}
		default:
			e := invalid(k, "", fmt.Sprintf("parameter %s must be a string, number or boolean", k))
			return &e
		}
	}
	return nil
}

func metadataKey(param string) (string, bool) {
	rest, ok := strings.CutPrefix(param, "metadata[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	return strings.TrimSuffix(rest, "]"), true
}

func metadataOf(params map[string]string) map[string]string {
	var md map[string]string
	for k, v := range params {
		if mk, ok := metadataKey(k); ok {
			if md == nil {
				md = map[string]string{}
			}
			md[mk] = v
		}
	}
	return md
}

// positiveAmount parses the amount parameter, in the currency's minor unit.
// An absent optional amount returns 0.
func positiveAmount(params map[string]string, required bool) (int64, *payments.ErrorBody) {
	v, ok := params["amount"]
	if !ok {
		if required {
			e := missing("amount")
			return 0, &e
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		e := invalid("amount", "parameter_invalid_integer",
			fmt.Sprintf("invalid amount %q: want a positive integer in the currency's minor unit, such as cents", v))
		return 0, &e
	}
	return n, nil
}

// fingerprint hashes the parameters so that a reused idempotency key can be
// checked without keeping the card number.
func fingerprint(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q\n", k, params[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validCardNumber checks length and the Luhn checksum, as a real provider
// does before it contacts the card network.
func validCardNumber(card string) bool {
	if len(card) < 12 || len(card) > 19 {
		return false
	}
	sum := 0
	for i := range len(card) {
		c := card[len(card)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// newID returns an object id with Stripe's prefixes: pi, ch, re, evt.
func newID(prefix string) string {
	return prefix + "_" + rand.Text()[:24]
}

func writeIntent(w http.ResponseWriter, pi payments.PaymentIntent) {
	if pi.Status == payments.IntentRequiresPaymentMethod && pi.LastPaymentError != nil {
		// A confirm that fails at once is a 402 card_error with the intent
		// inside, as with Stripe.
		body := *pi.LastPaymentError
		body.PaymentIntent = &pi
		writeError(w, http.StatusPaymentRequired, body)
		return
	}
	writeJSON(w, http.StatusOK, pi)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here is a client that went away; nothing is left to do.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, body payments.ErrorBody) {
	writeJSON(w, status, payments.ErrorResponse{Error: body})
}

func missing(param string) payments.ErrorBody {
	return payments.ErrorBody{Type: "invalid_request_error", Code: "parameter_missing", Param: param,
		Message: "missing required parameter: " + param}
}

func invalid(param, code, msg string) payments.ErrorBody {
	return payments.ErrorBody{Type: "invalid_request_error", Code: code, Param: param, Message: msg}
}

func noSuchIntent(id, param string) payments.ErrorBody {
	return payments.ErrorBody{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("no such payment_intent: %q", id)}
}

func unexpectedState(id, status, action string) payments.ErrorBody {
	return payments.ErrorBody{Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
		Message: fmt.Sprintf("cannot %s payment intent %s: its status is %s", action, id, status)}
}

func idempotencyMismatch(key, endpoint string) payments.ErrorBody {
	return payments.ErrorBody{Type: "idempotency_error",
		Message: fmt.Sprintf("idempotency key %q was first used on %s with other parameters; use a new key for a new request", key, endpoint)}
}
