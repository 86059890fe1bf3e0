package control

import (
	"context"

	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func (s *Server) schedule(ctx context.Context, req wire.ControlRequest) (any, error) {
	if req.At.IsZero() {
		return nil, waitroom.Errorf(waitroom.EINVALID, "missing opening time \"at\"")
	}
	if err := s.b.Schedule(ctx, req.Sale, req.At, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}

func (s *Server) open(ctx context.Context, req wire.ControlRequest) (any, error) {
	if err := s.b.Open(ctx, req.Sale, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}

func (s *Server) lane(ctx context.Context, req wire.ControlRequest) (any, error) {
	if req.Value == nil {
		return nil, waitroom.Errorf(waitroom.EINVALID, "missing share value")
	}
	if err := s.b.SetLane(ctx, req.Sale, req.Lane, *req.Value, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}

func (s *Server) codes(ctx context.Context, req wire.ControlRequest) (any, error) {
	if req.Value == nil {
		return nil, waitroom.Errorf(waitroom.EINVALID, "missing uses per code")
	}
	if err := s.b.AddCodes(ctx, req.Sale, req.Lane, req.Codes, *req.Value, req.By); err != nil {
		return nil, err
	}
	return s.b.SaleStatus(ctx, req.Sale)
}

// auto turns the automatic outflow mode on between Value and Max fans per
// minute, or off when Max is 0.
func (s *Server) auto(ctx context.Context, req wire.ControlRequest) (any, error) {
	if req.Value == nil || req.Max == nil {
		return nil, waitroom.Errorf(waitroom.EINVALID, "missing minimum or maximum rate")
	}
	lo, hi := *req.Value, *req.Max
	if hi == 0 {
		return s.change(ctx, req, func(c *wire.Control) { c.AutoMin, c.AutoMax = 0, 0 })
	}
	if lo < 1 || lo > hi || hi > MaxRate {
		return nil, waitroom.Errorf(waitroom.EINVALID, "the automatic rate needs 1 <= minimum <= maximum <= %d fans per minute, got %d and %d", MaxRate, lo, hi)
	}
	return s.change(ctx, req, func(c *wire.Control) {
		c.AutoMin, c.AutoMax = lo, hi
		c.RatePerMinute = max(lo, min(c.RatePerMinute, hi))
	})
}
