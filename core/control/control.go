// Package control serves the operators' control plane as a NATS micro
// service: list sales with their queue and stock, pause and resume, set the
// admission rate, the cap on fans shopping and the proof-of-work
// difficulty, and remove a session. Every change is recorded on the sale's
// queue stream with who made it, so every edge and core replica applies it
// from the stream.
package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Backend is what the control plane steers; the core implements it.
type Backend interface {
	// SaleStatuses returns every sale's status.
	SaleStatuses(ctx context.Context) ([]wire.SaleStatus, error)
	// SaleStatus returns one sale's status. ENOTFOUND.
	SaleStatus(ctx context.Context, saleID string) (wire.SaleStatus, error)
	// SetControl records new settings of a sale. EINVALID, ENOTFOUND.
	SetControl(ctx context.Context, saleID string, ctl wire.Control, by string) error
	// RemoveSession takes a session out of a sale's queue. ENOTFOUND.
	RemoveSession(ctx context.Context, saleID, session, by string) error
	// Schedule sets the opening time and commits to a shuffle seed;
	// Open opens a scheduled sale now. EINVALID, ENOTFOUND.
	Schedule(ctx context.Context, saleID string, at time.Time, by string) error
	Open(ctx context.Context, saleID, by string) error
	// SetLane sets a lane's share of each admission batch; AddCodes adds
	// hashed access codes to a lane. EINVALID, ENOTFOUND.
	SetLane(ctx context.Context, saleID, lane string, share int, by string) error
	AddCodes(ctx context.Context, saleID, lane string, hashes []string, uses int, by string) error
}

// Limits bound the values an operator can set.
const (
	MaxRate       = 1_000_000 // fans per minute
	MaxCap        = 10_000_000
	MaxDifficulty = 32
)

// Server is the control micro service.
type Server struct {
	b   Backend
	log *slog.Logger
	svc micro.Service
}

// New returns a Server; Start registers it.
func New(b Backend, log *slog.Logger) *Server {
	return &Server{b: b, log: log.With(logkey.Component, "core.control")}
}

// Version is the service version reported to `nats micro info`.
const Version = "0.1.0"

// Start registers the service on nc.
func (s *Server) Start(nc *nats.Conn) error {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        wire.ControlService,
		Version:     Version,
		Description: "Taquilla control plane: schedule, open, pause, resume, rate, cap, lanes, access codes, proof of work, removals, stats",
		QueueGroup:  "taquilla-control",
	})
	if err != nil {
		return err
	}
	s.svc = svc
	endpoints := []struct {
		name, subject string
		fn            func(context.Context, wire.ControlRequest) (any, error)
	}{
		{"sales", wire.SubjectCtlSales, s.sales},
		{"stats", wire.SubjectCtlStats, s.stats},
		{"pause", wire.SubjectCtlPause, s.pause(true)},
		{"resume", wire.SubjectCtlResume, s.pause(false)},
		// A fixed rate turns the automatic mode off.
		{"rate", wire.SubjectCtlRate, s.set("rate", 0, MaxRate, func(c *wire.Control, v int) { c.RatePerMinute, c.AutoMin, c.AutoMax = v, 0, 0 })},
		{"auto", wire.SubjectCtlAuto, s.auto},
		{"cap", wire.SubjectCtlCap, s.set("cap", 0, MaxCap, func(c *wire.Control, v int) { c.Cap = v })},
		{"pow", wire.SubjectCtlPoW, s.set("difficulty", 0, MaxDifficulty, func(c *wire.Control, v int) { c.PoWDifficulty = &v })},
		{"identity", wire.SubjectCtlIdentity, s.set("required", 0, 1, func(c *wire.Control, v int) { c.IdentityRequired = v == 1 })},
		{"remove", wire.SubjectCtlRemove, s.remove},
		{"schedule", wire.SubjectCtlSchedule, s.schedule},
		{"open", wire.SubjectCtlOpen, s.open},
		{"lane", wire.SubjectCtlLane, s.lane},
		{"codes", wire.SubjectCtlCodes, s.codes},
	}
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.name, s.handler(e.name, e.fn), micro.WithEndpointSubject(e.subject)); err != nil {
			return err
		}
	}
	return nil
}

// Stop unregisters the service.
func (s *Server) Stop() error {
	if s.svc == nil {
		return nil
	}
	return s.svc.Stop()
}

func (s *Server) handler(name string, fn func(context.Context, wire.ControlRequest) (any, error)) micro.HandlerFunc {
	return func(r micro.Request) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var req wire.ControlRequest
		var data any
		err := json.Unmarshal(r.Data(), &req)
		switch {
		case err != nil:
			err = waitroom.Errorf(waitroom.EINVALID, "malformed control request body")
		case req.By == "" || len(req.By) > 64:
			err = waitroom.Errorf(waitroom.EINVALID, "name the operator in \"by\" (1 to 64 characters)")
		default:
			data, err = fn(ctx, req)
		}
		if err != nil {
			code := waitroom.ErrorCode(err)
			if code == waitroom.EINTERNAL {
				s.log.Error("control request failed", logkey.Subject, r.Subject(), logkey.Err, err)
			}
			body, _ := json.Marshal(wire.StoreReply{V: wire.Version, Error: &wire.ErrorDetail{Code: code, Message: waitroom.ErrorMessage(err)}})
			status := 400
			if code == waitroom.EINTERNAL || code == waitroom.EUNAVAILABLE {
				status = 500
			}
			_ = r.Error(strconv.Itoa(status), code, body)
			return
		}
		if name != "sales" && name != "stats" {
			attrs := []any{logkey.Reason, name, logkey.SaleID, req.Sale, logkey.Operator, req.By}
			if req.Value != nil {
				attrs = append(attrs, logkey.Value, *req.Value)
			}
			s.log.Info("control change", attrs...)
		}
		body, _ := json.Marshal(data)
		_ = r.RespondJSON(wire.StoreReply{V: wire.Version, Data: body})
	}
}

func (s *Server) sales(ctx context.Context, _ wire.ControlRequest) (any, error) {
	return s.b.SaleStatuses(ctx)
}

func (s *Server) stats(ctx context.Context, req wire.ControlRequest) (any, error) {
	return s.b.SaleStatus(ctx, req.Sale)
}

func (s *Server) pause(paused bool) func(context.Context, wire.ControlRequest) (any, error) {
	return func(ctx context.Context, req wire.ControlRequest) (any, error) {
		return s.change(ctx, req, func(c *wire.Control) { c.Paused = paused })
	}
}

func (s *Server) set(what string, lo, hi int, apply func(*wire.Control, int)) func(context.Context, wire.ControlRequest) (any, error) {
	return func(ctx context.Context, req wire.ControlRequest) (any, error) {
		if req.Value == nil {
			return nil, waitroom.Errorf(waitroom.EINVALID, "missing %s value", what)
		}
		v := *req.Value
		if v < lo || v > hi {
			return nil, waitroom.Errorf(waitroom.EINVALID, "%s must be %d to %d, got %d", what, lo, hi, v)
		}
		return s.change(ctx, req, func(c *wire.Control) { apply(c, v) })
	}
}

// change reads the sale's settings, applies edit and records the result.
func (s *Server) change(ctx context.Context, req wire.ControlRequest, edit func(*wire.Control)) (any, error) {
	st, err := s.b.SaleStatus(ctx, req.Sale)
	if err != nil {
		return nil, err
	}
	ctl := st.Control
	edit(&ctl)
	if err := s.b.SetControl(ctx, req.Sale, ctl, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}

func (s *Server) remove(ctx context.Context, req wire.ControlRequest) (any, error) {
	if req.Session == "" {
		return nil, waitroom.Errorf(waitroom.EINVALID, "missing session")
	}
	if err := s.b.RemoveSession(ctx, req.Sale, req.Session, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}
