// Package inventory applies the selling rules: hold lifetimes, ticket
// limits, the payment flow around the provider, and the sweeper that ends
// expired holds and settles payments whose outcome was unknown. The SQL lives
// in core/postgres; this package decides what to call and when.
package inventory

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// Config sets the selling rules.
type Config struct {
	// HoldTTL is how long seats stay in a cart.
	HoldTTL time.Duration
	// CheckoutTTL is how long a fan has to pay once in checkout.
	CheckoutTTL time.Duration
	// MaxTickets is the per-fan limit of places per show.
	MaxTickets int
	// MaxPerHold bounds the quantity of one hold request.
	MaxPerHold int
	// SweepInterval is how often expired holds are released.
	SweepInterval time.Duration
	// PaymentTimeout bounds one call to the provider.
	PaymentTimeout time.Duration
}

// DefaultConfig returns the defaults: a 10 minute cart, 15 minutes to pay,
// 6 tickets per fan, a sweep every 2 seconds.
func DefaultConfig() Config {
	return Config{
		HoldTTL:        10 * time.Minute,
		CheckoutTTL:    15 * time.Minute,
		MaxTickets:     6,
		MaxPerHold:     6,
		SweepInterval:  2 * time.Second,
		PaymentTimeout: 20 * time.Second,
	}
}

// Service sells seats. It implements waitroom.Inventory.
type Service struct {
	db       *postgres.DB
	provider payments.Provider
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	mapsMu sync.Mutex // guards maps
	// maps caches each sale's seat map for seatMapTTL: counting a show's
	// available places reads every seat row, and every admitted fan requests it.
	maps map[string]cachedMap

	// holdsExpired counts carts the sweeper ended because their time ran
	// out.
	holdsExpired atomic.Int64

	// OnSold, if set, runs after a sale commits, outside any transaction.
	OnSold func(order *waitroom.Order)
	// OnReleased, if set, runs after seats of a sale went back on sale.
	OnReleased func(saleID string)
}

var _ waitroom.Inventory = (*Service)(nil)

// New returns a Service.
func New(db *postgres.DB, provider payments.Provider, cfg Config, log *slog.Logger) *Service {
	return &Service{db: db, provider: provider, cfg: cfg, log: log.With(logkey.Component, "core.inventory"), now: time.Now,
		maps: make(map[string]cachedMap)}
}

// HoldsExpired returns how many carts the sweeper ended because their time
// ran out.
func (s *Service) HoldsExpired() int64 { return s.holdsExpired.Load() }

// SetClock replaces the clock; tests use it to expire holds.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// FindSales implements waitroom.Inventory.
func (s *Service) FindSales(ctx context.Context) ([]waitroom.Sale, error) {
	return s.db.FindSales(ctx)
}

// seatMapTTL bounds how stale the availability in a seat map may be. A fan
// who picks a section that just sold out gets sold_out from the hold itself.
const seatMapTTL = time.Second

type cachedMap struct {
	m  *waitroom.SeatMap
	at time.Time
}

// FindSeatMap implements waitroom.Inventory. Availability is at most
// seatMapTTL old.
func (s *Service) FindSeatMap(ctx context.Context, saleID string) (*waitroom.SeatMap, error) {
	now := time.Now()
	s.mapsMu.Lock()
	c, ok := s.maps[saleID]
	s.mapsMu.Unlock()
	if ok && now.Sub(c.at) < seatMapTTL {
		return c.m, nil
	}
	m, err := s.db.FindSeatMap(ctx, saleID)
	if err != nil {
		return nil, err
	}
	s.mapsMu.Lock()
	s.maps[saleID] = cachedMap{m: m, at: now}
	s.mapsMu.Unlock()
	return m, nil
}

// Hold implements waitroom.Inventory. The places count against req.Fan,
// or against the session's own account when req.Fan is empty.
func (s *Service) Hold(ctx context.Context, req waitroom.HoldRequest) (*waitroom.Hold, error) {
	if err := s.validateHold(&req); err != nil {
		return nil, err
	}
	if req.Fan == "" {
		// The account that a token without a fan identity names.
		req.Fan = token.Claims{Session: req.Session}.Account()
	}
	now := s.now()
	return s.db.CreateHold(ctx, req, postgres.HoldParams{
		HoldID:     waitroom.NewID("h_"),
		Now:        now,
		ExpiresAt:  now.Add(s.cfg.HoldTTL),
		MaxTickets: s.cfg.MaxTickets,
		Seed:       rand.Uint64(),
	})
}

func (s *Service) validateHold(req *waitroom.HoldRequest) error {
	picks := 0
	for _, set := range []bool{len(req.SeatIDs) > 0, req.Section != "", req.Tier != ""} {
		if set {
			picks++
		}
	}
	switch {
	case req.IdempotencyKey == "" || len(req.IdempotencyKey) > 128:
		return waitroom.Errorf(waitroom.EINVALID, "an idempotency key of 1 to 128 characters is required")
	case picks != 1:
		return waitroom.Errorf(waitroom.EINVALID, "give exactly one of seats, section or tier")
	case len(req.SeatIDs) > 0 && req.Quantity != 0:
		return waitroom.Errorf(waitroom.EINVALID, "quantity goes with a section or a tier, not with seats")
	case len(req.SeatIDs) > s.cfg.MaxPerHold:
		return waitroom.Errorf(waitroom.EINVALID, "at most %d seats per hold", s.cfg.MaxPerHold)
	case len(req.SeatIDs) == 0 && (req.Quantity < 1 || req.Quantity > s.cfg.MaxPerHold):
		return waitroom.Errorf(waitroom.EINVALID, "quantity must be 1 to %d", s.cfg.MaxPerHold)
	}
	seen := make(map[string]bool, len(req.SeatIDs))
	for _, id := range req.SeatIDs {
		if id == "" || len(id) > 64 || seen[id] {
			return waitroom.Errorf(waitroom.EINVALID, "seat ids must be distinct and 1 to 64 characters")
		}
		seen[id] = true
	}
	return nil
}

// Checkout implements waitroom.Inventory.
func (s *Service) Checkout(ctx context.Context, holdID, session string) (*waitroom.Hold, error) {
	now := s.now()
	return s.db.CheckoutHold(ctx, holdID, session, now, now.Add(s.cfg.CheckoutTTL), s.cfg.CheckoutTTL < s.cfg.HoldTTL)
}

// Release implements waitroom.Inventory.
func (s *Service) Release(ctx context.Context, holdID, session string) (*waitroom.Hold, error) {
	h, err := s.db.ReleaseHold(ctx, holdID, session, s.now())
	if err == nil && s.OnReleased != nil {
		s.OnReleased(h.SaleID)
	}
	return h, err
}

// FindHoldByID implements waitroom.Inventory.
func (s *Service) FindHoldByID(ctx context.Context, holdID, session string) (*waitroom.Hold, error) {
	return s.db.FindHoldByID(ctx, holdID, session)
}

// FindOrderByID implements waitroom.Inventory.
func (s *Service) FindOrderByID(ctx context.Context, orderID, session string) (*waitroom.Order, error) {
	return s.db.FindOrderByID(ctx, orderID, session)
}

// CancelOrder implements waitroom.Inventory. The refund runs after the
// commit; when it fails, the sweeper retries it.
func (s *Service) CancelOrder(ctx context.Context, orderID, session string) (*waitroom.Order, error) {
	o, changed, err := s.db.CancelOrder(ctx, orderID, session, s.now())
	if err != nil {
		return nil, err
	}
	if changed {
		s.refund(ctx, o.PaymentID)
		if s.OnReleased != nil {
			s.OnReleased(o.SaleID)
		}
	}
	return o, nil
}

// Pay implements waitroom.Inventory. It records the payment, charges the
// provider outside any transaction, then applies the outcome in a second
// transaction. When the provider does not answer, the payment stays pending
// and the sweeper settles it from the provider's status.
func (s *Service) Pay(ctx context.Context, req waitroom.PayRequest) (*waitroom.PayResult, error) {
	st, err := s.db.BeginPayment(ctx, req.HoldID, req.Session, s.now())
	if err != nil {
		return nil, err
	}
	if st.Order != nil {
		// A repeat of a paid request: the effects after the first commit
		// may have been lost with a crashed core, so run them again; they
		// are idempotent.
		h, err := s.db.FindHoldByID(ctx, req.HoldID, req.Session)
		if err != nil {
			return nil, err
		}
		if s.OnSold != nil {
			s.OnSold(st.Order)
		}
		return &waitroom.PayResult{Hold: *h, Order: st.Order}, nil
	}

	outcome, ref, decline, err := s.charge(ctx, st.Payment, req.Card)
	if err != nil {
		return nil, err
	}
	var fin *postgres.Finalized
	if outcome == postgres.OutcomeCaptured && st.Hold != nil {
		// This request recorded the payment and read the hold: sell it
		// in one round trip.
		fin, err = s.db.SellCaptured(ctx, st, ref, s.now())
		if err == nil {
			s.afterFinalize(ctx, fin)
		}
	} else {
		fin, err = s.finalize(ctx, st.Payment.ID, outcome, ref)
	}
	if err != nil {
		return nil, err
	}
	if fin.RefundDue {
		return nil, waitroom.Errorf(waitroom.ECONFLICT, "the hold expired before the payment completed; the payment will be refunded")
	}
	res := &waitroom.PayResult{Hold: *fin.Hold, Order: fin.Order}
	if fin.Payment.State == waitroom.PaymentDeclined {
		res.Declined = decline
		if res.Declined == "" {
			res.Declined = "card_declined"
		}
	}
	return res, nil
}

// charge calls the provider and maps its result to an outcome.
func (s *Service) charge(ctx context.Context, pay *waitroom.Payment, card string) (outcome, ref, decline string, err error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.PaymentTimeout)
	defer cancel()
	res, err := s.provider.Charge(cctx, pay.ID, pay.AmountCents, card)
	if err != nil {
		s.log.Warn("payment outcome unknown", logkey.HoldID, pay.HoldID, logkey.Err, err)
		return "", "", "", waitroom.Errorf(waitroom.EUNAVAILABLE, "the payment provider did not respond; retry the payment, it will not be charged twice")
	}
	switch res.Status {
	case payments.StatusCaptured:
		return postgres.OutcomeCaptured, res.Ref, "", nil
	case payments.StatusDeclined:
		return postgres.OutcomeDeclined, res.Ref, res.DeclineCode, nil
	}
	return "", "", "", waitroom.Errorf(waitroom.EUNAVAILABLE, "the payment is still processing; retry to see its outcome")
}

// finalize applies an outcome and runs the effects that follow a commit.
func (s *Service) finalize(ctx context.Context, paymentID, outcome, ref string) (*postgres.Finalized, error) {
	fin, err := s.db.FinalizePayment(ctx, paymentID, outcome, ref, s.now())
	if err != nil {
		return nil, err
	}
	s.afterFinalize(ctx, fin)
	return fin, nil
}

// afterFinalize runs the effects that follow a payment's committed outcome:
// a refund owed, and the sold and released callbacks.
func (s *Service) afterFinalize(ctx context.Context, fin *postgres.Finalized) {
	if fin.RefundDue {
		s.refund(ctx, fin.Payment.ID)
	}
	if fin.Order != nil && fin.Payment.State == waitroom.PaymentCaptured && s.OnSold != nil {
		s.OnSold(fin.Order)
	}
	if fin.Payment.State == waitroom.PaymentDeclined || fin.Payment.State == waitroom.PaymentVoid {
		if s.OnReleased != nil {
			s.OnReleased(fin.Hold.SaleID)
		}
	}
}

// refund gives back money captured for seats that went back on sale. A
// failure is logged; the sweeper retries every payment still owed.
func (s *Service) refund(ctx context.Context, paymentID string) {
	if err := s.provider.Refund(ctx, paymentID); err != nil {
		s.log.Warn("refund failed; will retry", logkey.Err, err)
		return
	}
	if err := s.db.MarkRefunded(ctx, paymentID, s.now()); err != nil {
		s.log.Error("refund made but not recorded; will retry", logkey.Err, err)
		return
	}
	s.log.Info("payment refunded", logkey.Reason, "captured after hold expired")
}

// IsUnavailable reports whether err means the caller should retry later.
func IsUnavailable(err error) bool {
	return waitroom.ErrorCode(err) == waitroom.EUNAVAILABLE || errors.Is(err, payments.ErrUnavailable)
}

// HandleWebhook applies a provider's event about a payment. Events may come
// late, twice or out of order; finalize only moves a payment forward (a
// late failure after a capture changes nothing, a capture after the seats
// went back is refunded), so applying them as they come is safe. Events
// about payments this core does not know are ignored.
func (s *Service) HandleWebhook(ctx context.Context, ev payments.WebhookEvent) error {
	paymentID := ev.Data.Object.Metadata[payments.MetadataPaymentID]
	if paymentID == "" {
		return nil
	}
	var outcome string
	switch ev.Type {
	case payments.EventPaymentSucceeded:
		outcome = postgres.OutcomeCaptured
	case payments.EventPaymentFailed:
		outcome = postgres.OutcomeDeclined
	default:
		return nil
	}
	_, err := s.finalize(ctx, paymentID, outcome, ev.Data.Object.ID)
	if waitroom.ErrorCode(err) == waitroom.ENOTFOUND {
		return nil
	}
	return err
}
