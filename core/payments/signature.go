package payments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the HTTP header that carries a webhook's signature,
// shaped like Stripe's Stripe-Signature: "t=<unix seconds>,v1=<hex>", where
// the hex is HMAC-SHA256 over "<t>.<body>" keyed by the endpoint's secret.
// Several v1 entries may appear, for example while a secret is rotated.
const SignatureHeader = "Taquilla-Signature"

// WebhookTolerance is how far a webhook's signed timestamp may lie from the
// receiver's clock, in the past or the future. A captured delivery replayed
// later than this is rejected. Stripe's libraries default to the same 5
// minutes.
const WebhookTolerance = 5 * time.Minute

// maxSignatureHeader bounds the work spent on a hostile header.
const maxSignatureHeader = 4096

// Errors of ParseWebhook. They all mean "reject with 400".
var (
	ErrSignatureMissing = errors.New("webhook signature missing or malformed")
	ErrSignatureInvalid = errors.New("webhook signature does not match")
	ErrSignatureExpired = errors.New("webhook timestamp outside the tolerance")
	ErrEventInvalid     = errors.New("webhook event invalid")
)

// SignWebhook returns the SignatureHeader value for payload sent at t.
func SignWebhook(secret []byte, t time.Time, payload []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, payload))
}

func mac(secret []byte, ts string, payload []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(payload)
	return m.Sum(nil)
}

// ParseWebhook verifies header against payload and secret, checks that the
// signed timestamp is within WebhookTolerance of now, and decodes the event.
// It returns an error wrapping one of ErrSignatureMissing,
// ErrSignatureInvalid, ErrSignatureExpired or ErrEventInvalid.
func ParseWebhook(payload []byte, header string, secret []byte, now time.Time) (WebhookEvent, error) {
	if err := verifySignature(payload, header, secret, now); err != nil {
		return WebhookEvent{}, err
	}
	var ev WebhookEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return WebhookEvent{}, fmt.Errorf("%w: %w", ErrEventInvalid, err)
	}
	if ev.ID == "" || ev.Type == "" || ev.Data.Object.ID == "" {
		return WebhookEvent{}, fmt.Errorf("%w: id, type and data.object.id are required", ErrEventInvalid)
	}
	return ev, nil
}

func verifySignature(payload []byte, header string, secret []byte, now time.Time) error {
	if header == "" || len(header) > maxSignatureHeader {
		return ErrSignatureMissing
	}
	var ts string
	var sigs [][]byte
	for item := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return fmt.Errorf("%w: item %q has no '='", ErrSignatureMissing, item)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				continue // an unknown or broken entry; another v1 may match
			}
			sigs = append(sigs, sig)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=<unix seconds>,v1=<hex>", ErrSignatureMissing)
	}

	// Check the MAC before the clock so that a forged header learns nothing
	// about the receiver's time.
	want := mac(secret, ts, payload)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
			break
		}
	}
	if !matched {
		return ErrSignatureInvalid
	}
	age := now.Sub(time.Unix(t, 0))
	if age > WebhookTolerance || age < -WebhookTolerance {
		return fmt.Errorf("%w: signed %v ago, tolerance %v", ErrSignatureExpired, age.Round(time.Second), WebhookTolerance)
	}
	return nil
}
