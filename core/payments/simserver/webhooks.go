package simserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/shared/logkey"
)

// maxWebhookBackoff caps the wait between two attempts of one delivery.
const maxWebhookBackoff = 5 * time.Second

// emitLocked creates an event about pi and schedules its deliveries: one,
// or two at Config.WebhookDuplicateRate, each with its own delay, held back
// by WebhookLateDelay at WebhookLateRate. s.mu must be held, because the
// random choices use s.rng.
func (s *Server) emitLocked(eventType string, pi payments.PaymentIntent) {
	if s.cfg.WebhookURL == "" {
		return
	}
	ev := payments.WebhookEvent{ID: newID("evt"), Object: "event", Type: eventType, Created: time.Now().Unix(),
		Data: payments.EventData{Object: pi}}
	payload, err := json.Marshal(ev)
	if err != nil {
		// Unreachable: the event holds only strings, numbers and maps of
		// strings.
		s.log.Error("webhook event not encoded", logkey.EventID, ev.ID, logkey.Err, err)
		return
	}

	copies := 1
	if s.chanceLocked(s.cfg.WebhookDuplicateRate) {
		copies = 2
	}
	for range copies {
		delay := s.jitterLocked(s.cfg.WebhookDelay, s.cfg.WebhookJitter)
		if s.chanceLocked(s.cfg.WebhookLateRate) {
			delay += s.cfg.WebhookLateDelay
		}
		select {
		case s.hookSlots <- struct{}{}:
		default:
			s.dropped.Add(1)
			continue
		}
		started := s.goLocked(func() {
			defer func() { <-s.hookSlots }()
			s.deliver(ev.ID, payload, delay)
		})
		if !started {
			<-s.hookSlots
		}
	}
}

// deliver POSTs one copy of an event after delay, and again after a
// failure, until a 2xx, Config.WebhookMaxAttempts attempts, or Close.
func (s *Server) deliver(eventID string, payload []byte, delay time.Duration) {
	if sleep(s.ctx, delay) != nil {
		return
	}
	backoff := s.cfg.WebhookRetryBackoff
	for attempt := 1; ; attempt++ {
		err := s.post(payload)
		if err == nil {
			s.hooksDelivered.Add(1)
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		if attempt >= s.cfg.WebhookMaxAttempts {
			s.hooksFailed.Add(1)
			s.log.Warn("webhook delivery abandoned", logkey.EventID, eventID, logkey.URL, s.cfg.WebhookURL,
				logkey.Attempt, attempt, logkey.Err, err)
			return
		}
		s.log.Debug("webhook delivery failed; retrying", logkey.EventID, eventID, logkey.Attempt, attempt, logkey.Err, err)
		if sleep(s.ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, maxWebhookBackoff)
	}
}

// post sends one attempt, signed at the time of sending as Stripe does, so
// a retry carries a fresh timestamp.
func (s *Server) post(payload []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.WebhookURL, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "taquilla-payment-simulator")
	req.Header.Set(payments.SignatureHeader, payments.SignWebhook(s.cfg.WebhookSecret, time.Now(), payload))
	resp, err := s.hooks.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post webhook: endpoint returned %s", resp.Status)
	}
	return nil
}

// chanceLocked returns true with probability p. s.mu must be held.
func (s *Server) chanceLocked(p float64) bool {
	return p > 0 && s.rng.Float64() < p
}
