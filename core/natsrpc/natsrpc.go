// Package natsrpc serves the inventory over NATS request-reply as a NATS
// micro service, so `nats micro ls` and `nats micro stats` show it. Every
// request carries the fan's token; the service verifies it again, so only
// sessions that the queue admitted can hold seats, whatever an edge sends.
package natsrpc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// AdmissionFunc returns the queue state of a session in a sale (one of the
// queue package's fan states).
type AdmissionFunc func(saleID, session string) string

// ArriveFunc records that an admitted session reached the store.
type ArriveFunc func(saleID, session string)

// Server is the inventory micro service.
type Server struct {
	inv      waitroom.Inventory
	verifier *token.Verifier
	state    AdmissionFunc
	// Arrive, if set before Start, is called for every request made with
	// an admission token.
	Arrive  ArriveFunc
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	svc     micro.Service
	// slots bounds the requests handled at once. NATS calls a
	// subscription's handler for one message at a time, so each request
	// runs in its own goroutine; when every slot is busy the handler
	// waits, and NATS buffers the requests behind it.
	slots chan struct{}
	wg    sync.WaitGroup
	// nc sends the replies; see reply.
	nc *nats.Conn
}

// MaxConcurrent is the number of store requests one core handles at once,
// a little above what its database pool runs in parallel.
const MaxConcurrent = 256

// New returns a Server; Start registers it on a connection.
func New(inv waitroom.Inventory, verifier *token.Verifier, state AdmissionFunc, log *slog.Logger) *Server {
	return &Server{inv: inv, verifier: verifier, state: state, now: time.Now, timeout: 30 * time.Second,
		log: log.With(logkey.Component, "core.natsrpc"), slots: make(chan struct{}, MaxConcurrent)}
}

// Version is the service version reported to `nats micro info`.
const Version = "0.1.0"

// Start registers the service and its endpoints on nc.
func (s *Server) Start(nc *nats.Conn) error {
	s.nc = nc
	svc, err := micro.AddService(nc, micro.Config{
		Name:        wire.InventoryService,
		Version:     Version,
		Description: "Taquilla seat inventory: holds, checkout, payment, orders",
		QueueGroup:  "taquilla-core",
	})
	if err != nil {
		return err
	}
	s.svc = svc
	endpoints := []struct {
		name, subject string
		fn            func(context.Context, wire.StoreRequest) (any, error)
	}{
		{"sales", wire.SubjectSales, s.sales},
		{"seatmap", wire.SubjectSeatMap, s.seatMap},
		{"hold", wire.SubjectHold, s.hold},
		{"checkout", wire.SubjectCheckout, s.checkout},
		{"pay", wire.SubjectPay, s.pay},
		{"release", wire.SubjectRelease, s.release},
		{"hold-get", wire.SubjectHoldGet, s.holdGet},
		{"order-get", wire.SubjectOrderGet, s.orderGet},
		{"order-cancel", wire.SubjectCancel, s.orderCancel},
	}
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.name, s.handler(e.fn), micro.WithEndpointSubject(e.subject)); err != nil {
			return err
		}
	}
	return nil
}

// Stop unregisters the service and waits for the requests in progress.
func (s *Server) Stop() error {
	if s.svc == nil {
		return nil
	}
	err := s.svc.Stop()
	s.wg.Wait()
	return err
}

func (s *Server) handler(fn func(context.Context, wire.StoreRequest) (any, error)) micro.HandlerFunc {
	return func(r micro.Request) {
		s.slots <- struct{}{}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.slots; s.wg.Done() }()
			s.serve(r, fn)
		}()
	}
}

func (s *Server) serve(r micro.Request, fn func(context.Context, wire.StoreRequest) (any, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()

	var req wire.StoreRequest
	var data any
	err := json.Unmarshal(r.Data(), &req)
	if err != nil {
		err = waitroom.Errorf(waitroom.EINVALID, "malformed request body")
	} else {
		data, err = fn(ctx, req)
	}
	if err != nil {
		s.respondError(r, err)
		return
	}
	body, err := json.Marshal(data)
	if err != nil {
		s.respondError(r, err)
		return
	}
	reply, _ := json.Marshal(wire.StoreReply{V: wire.Version, Data: body})
	s.reply(r, reply, "", "")
}

// reply sends a response, with micro's error headers when code is set.
// Handlers return before the reply is sent, and micro reads the request's
// error fields once the handler returns. A reply through micro.Request from
// the request's goroutine would race with that read, so replies go through
// the connection instead. NOTE: `nats micro stats` then counts
// no errors and measures only the hand-off, not the request's work.
func (s *Server) reply(r micro.Request, body []byte, status, code string) {
	if r.Reply() == "" {
		return
	}
	m := nats.NewMsg(r.Reply())
	m.Data = body
	if code != "" {
		m.Header.Set(micro.ErrorHeader, code)
		m.Header.Set(micro.ErrorCodeHeader, status)
	}
	if err := s.nc.PublishMsg(m); err != nil {
		s.log.Warn("store reply not sent", logkey.Subject, r.Subject(), logkey.Err, err)
	}
}

func (s *Server) respondError(r micro.Request, err error) {
	code := waitroom.ErrorCode(err)
	if code == waitroom.EINTERNAL {
		s.log.Error("store request failed", logkey.Subject, r.Subject(), logkey.Err, err)
	}
	body, _ := json.Marshal(wire.StoreReply{V: wire.Version, Error: &wire.ErrorDetail{Code: code, Message: waitroom.ErrorMessage(err)}})
	s.reply(r, body, strconv.Itoa(statusOf(code)), code)
}

// statusOf gives micro's error header a number, for `nats micro stats`.
func statusOf(code string) int {
	switch code {
	case waitroom.EINTERNAL:
		return 500
	case waitroom.EUNAVAILABLE:
		return 503
	}
	return 400
}

// admitted verifies an admission token. With shopping set it also requires
// that the queue still counts the session as shopping: a fan who finished or
// left cannot hold new seats, but can still pay for a hold already made.
func (s *Server) admitted(req wire.StoreRequest, shopping bool) (token.Claims, error) {
	c, err := s.verifier.Verify(req.Token, token.KindAdmit, s.now())
	if err != nil {
		return c, err
	}
	if req.Sale != "" && req.Sale != c.Sale {
		return c, waitroom.Errorf(waitroom.EUNAUTHORIZED, "token is for another sale")
	}
	if s.Arrive != nil {
		s.Arrive(c.Sale, c.Session)
	}
	if !shopping {
		return c, nil
	}
	switch s.state(c.Sale, c.Session) {
	case queue.Done, queue.Left:
		return c, waitroom.ErrNotAdmitted
	}
	return c, nil
}

// owner verifies a ticket or an admission token for reads of a session's
// own holds and orders.
func (s *Server) owner(req wire.StoreRequest) (token.Claims, error) {
	c, err := s.verifier.Verify(req.Token, token.KindAdmit, s.now())
	if err == nil {
		return c, nil
	}
	c, err2 := s.verifier.Verify(req.Token, token.KindTicket, s.now())
	if err2 == nil {
		return c, nil
	}
	if errors.Is(err, waitroom.ErrTokenExpired) {
		return c, err
	}
	return c, err2
}

func (s *Server) sales(ctx context.Context, _ wire.StoreRequest) (any, error) {
	return s.inv.FindSales(ctx)
}

func (s *Server) seatMap(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.admitted(req, false)
	if err != nil {
		return nil, err
	}
	return s.inv.FindSeatMap(ctx, c.Sale)
}

func (s *Server) hold(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.admitted(req, true)
	if err != nil {
		return nil, err
	}
	// The session owns the hold, but the ticket limit counts against the
	// fan account, which every session of one fan shares.
	return s.inv.Hold(ctx, waitroom.HoldRequest{
		SaleID: c.Sale, Session: c.Session, Fan: c.Account(), IdempotencyKey: req.IdempotencyKey,
		SeatIDs: req.Seats, Section: req.Section, Tier: req.Tier, Quantity: req.Quantity, AllowSplit: req.AllowSplit,
	})
}

func (s *Server) checkout(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.admitted(req, false)
	if err != nil {
		return nil, err
	}
	return s.inv.Checkout(ctx, req.HoldID, c.Session)
}

func (s *Server) pay(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.admitted(req, false)
	if err != nil {
		return nil, err
	}
	return s.inv.Pay(ctx, waitroom.PayRequest{HoldID: req.HoldID, Session: c.Session, IdempotencyKey: req.IdempotencyKey, Card: req.Card})
}

func (s *Server) release(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.admitted(req, false)
	if err != nil {
		return nil, err
	}
	return s.inv.Release(ctx, req.HoldID, c.Session)
}

func (s *Server) holdGet(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.owner(req)
	if err != nil {
		return nil, err
	}
	return s.inv.FindHoldByID(ctx, req.HoldID, c.Session)
}

func (s *Server) orderGet(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.owner(req)
	if err != nil {
		return nil, err
	}
	return s.inv.FindOrderByID(ctx, req.OrderID, c.Session)
}

func (s *Server) orderCancel(ctx context.Context, req wire.StoreRequest) (any, error) {
	c, err := s.owner(req)
	if err != nil {
		return nil, err
	}
	return s.inv.CancelOrder(ctx, req.OrderID, c.Session)
}
