package payments_test

import (
	"errors"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/payments"
)

// fuzzSecret and fuzzNow are the secret and clock that the seeds in
// testdata/fuzz/FuzzWebhook were signed with: 2025-12-11 10:00 CET.
var (
	fuzzSecret = []byte("whsec_fuzz")
	fuzzNow    = time.Unix(1765443600, 0)
)

// FuzzWebhook feeds ParseWebhook hostile bodies and signature headers. It
// checks that every failure is one of the documented errors, that an
// accepted event has the fields the handler relies on, and that any payload
// signed with the secret passes the signature check.
func FuzzWebhook(f *testing.F) {
	valid := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1765443600,` +
		`"data":{"object":{"id":"pi_1","object":"payment_intent","amount":4500,"amount_received":4500,` +
		`"currency":"eur","status":"succeeded","created":1765443600,"amount_refunded":0,"metadata":{"payment_id":"p1"}}}}`)
	f.Add(valid, payments.SignWebhook(fuzzSecret, fuzzNow, valid))
	f.Add(valid, "t=1765443600,v1=00")
	f.Add([]byte(`{}`), payments.SignWebhook(fuzzSecret, fuzzNow, []byte(`{}`)))
	f.Add([]byte(""), "")

	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		ev, err := payments.ParseWebhook(payload, header, fuzzSecret, fuzzNow)
		if err != nil {
			if !isWebhookError(err) {
				t.Errorf("ParseWebhook(%q, %q) = %v, want one of the documented errors", payload, header, err)
			}
		} else if ev.ID == "" || ev.Type == "" || ev.Data.Object.ID == "" {
			t.Errorf("ParseWebhook(%q, %q) accepted an event without id, type or object id: %+v", payload, header, ev)
		}

		// Signing round trip: the payload signed now must pass the
		// signature check, whatever the body holds.
		signed := payments.SignWebhook(fuzzSecret, fuzzNow, payload)
		_, err = payments.ParseWebhook(payload, signed, fuzzSecret, fuzzNow)
		if errors.Is(err, payments.ErrSignatureMissing) || errors.Is(err, payments.ErrSignatureInvalid) ||
			errors.Is(err, payments.ErrSignatureExpired) {
			t.Errorf("ParseWebhook(%q) with its own signature = %v, want the signature accepted", payload, err)
		}
	})
}

func isWebhookError(err error) bool {
	for _, want := range []error{payments.ErrSignatureMissing, payments.ErrSignatureInvalid,
		payments.ErrSignatureExpired, payments.ErrEventInvalid} {
		if errors.Is(err, want) {
			return true
		}
	}
	return false
}

func TestParseWebhook(t *testing.T) {
	payload := []byte(`{"id":"evt_1","type":"charge.refunded","data":{"object":{"id":"pi_1"}}}`)
	sig := signature(fuzzSecret, fuzzNow, payload)
	tests := []struct {
		name    string
		payload []byte
		header  string
		want    error
	}{
		{"ok", payload, payments.SignWebhook(fuzzSecret, fuzzNow, payload), nil},
		{"ok_spaces", payload, " t=1765443600 , v1=" + sig, nil},
		{"missing", payload, "", payments.ErrSignatureMissing},
		{"no_equals", payload, "t1765443600", payments.ErrSignatureMissing},
		{"no_timestamp", payload, "v1=" + sig, payments.ErrSignatureMissing},
		{"timestamp_overflows", payload, "t=99999999999999999999,v1=" + sig, payments.ErrSignatureMissing},
		{"short_signature", payload, "t=1765443600,v1=abcd", payments.ErrSignatureMissing},
		{"wrong_signature", payload, payments.SignWebhook([]byte("other"), fuzzNow, payload), payments.ErrSignatureInvalid},
		{"expired", payload, payments.SignWebhook(fuzzSecret, fuzzNow.Add(-6*time.Minute), payload), payments.ErrSignatureExpired},
		{"not_json", []byte("x"), payments.SignWebhook(fuzzSecret, fuzzNow, []byte("x")), payments.ErrEventInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := payments.ParseWebhook(tt.payload, tt.header, fuzzSecret, fuzzNow)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("ParseWebhook(%q) = %v, want %v", tt.header, err, tt.want)
			}
			if err == nil && (ev.ID != "evt_1" || ev.Data.Object.ID != "pi_1") {
				t.Errorf("ParseWebhook(%q) = %+v, want evt_1 about pi_1", tt.header, ev)
			}
		})
	}
}
