package inventory

import (
	"context"
	"sync"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// Sweeper releases expired holds and settles payments, once per interval.
type Sweeper struct {
	svc    *Service
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartSweeper runs the sweeper until ctx ends or Close is called.
func (s *Service) StartSweeper(ctx context.Context) *Sweeper {
	ctx, cancel := context.WithCancel(ctx)
	sw := &Sweeper{svc: s, cancel: cancel}
	sw.wg.Add(1)
	go func() {
		defer sw.wg.Done()
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Sweep(ctx)
			}
		}
	}()
	return sw
}

// Close stops the sweeper and waits for it.
func (sw *Sweeper) Close() {
	sw.cancel()
	sw.wg.Wait()
}

// Sweep runs one pass: end carts and checkouts whose time ran out, and
// retry refunds still owed. Errors are logged; the next pass retries.
func (s *Service) Sweep(ctx context.Context) {
	now := s.now()
	released := map[string]bool{}
	due, err := s.db.DueHolds(ctx, now)
	if err != nil {
		s.log.Warn("sweep failed", logkey.Err, err)
	}
	for _, d := range due {
		switch {
		case d.State == waitroom.HoldHeld:
			ok, err := s.db.ExpireHeld(ctx, d.HoldID, now)
			if err != nil {
				s.log.Warn("expire hold failed", logkey.HoldID, d.HoldID, logkey.Err, err)
			}
			if ok {
				s.holdsExpired.Add(1)
			}
			released[d.SaleID] = released[d.SaleID] || ok
		case d.PaymentID == "":
			ok, err := s.db.ExpireUnpaidCheckout(ctx, d.HoldID, now)
			if err != nil {
				s.log.Warn("expire checkout failed", logkey.HoldID, d.HoldID, logkey.Err, err)
			}
			released[d.SaleID] = released[d.SaleID] || ok
		default:
			// A seat in checkout goes back on sale only when the provider
			// confirms that no payment succeeded.
			s.settlePayment(ctx, d.PaymentID)
		}
	}
	s.retryRefunds(ctx, now)
	if s.OnReleased != nil {
		for sale, ok := range released {
			if ok {
				s.OnReleased(sale)
			}
		}
	}
}

// settlePayment asks the provider for a pending payment's outcome and
// applies it.
func (s *Service) settlePayment(ctx context.Context, paymentID string) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	defer cancel()
	res, err := s.provider.Status(cctx, paymentID)
	if err != nil {
		s.log.Warn("payment status unknown", logkey.Err, err)
		return
	}
	var outcome string
	switch res.Status {
	case payments.StatusCaptured, payments.StatusRefunded:
		outcome = postgres.OutcomeCaptured
	case payments.StatusDeclined:
		outcome = postgres.OutcomeDeclined
	case payments.StatusNone:
		outcome = postgres.OutcomeNone
	default:
		return // still processing; look again next pass
	}
	if _, err := s.finalize(ctx, paymentID, outcome, res.Ref); err != nil {
		s.log.Warn("settle payment failed", logkey.Err, err)
	}
}

func (s *Service) retryRefunds(ctx context.Context, now time.Time) {
	ids, err := s.db.PaymentsInState(ctx, waitroom.PaymentRefundPending, now)
	if err != nil {
		s.log.Warn("sweep of refunds failed", logkey.Err, err)
		return
	}
	for _, id := range ids {
		s.refund(ctx, id)
	}
}
