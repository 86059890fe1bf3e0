package httpd

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

type websocketConn = websocket.Conn

// routeStore serves /api/v1/holds… and /api/v1/orders/{id}.
func (s *Server) routeStore(ctx *fasthttp.RequestCtx, method string, parts []string) {
	idem := string(ctx.Request.Header.Peek("Idempotency-Key"))
	switch {
	case len(parts) == 1 && parts[0] == "holds" && method == fasthttp.MethodPost:
		var body wire.HoldBody
		if err := decode(ctx, &body); err != nil {
			s.writeError(ctx, err)
			return
		}
		if idem == "" {
			// Without a key a retried request would hold a second set of
			// seats; the ticket limit still caps the damage.
			idem = waitroom.NewID("k_")
		}
		s.store(ctx, wire.SubjectHold, wire.StoreRequest{IdempotencyKey: idem, Seats: body.Seats, Section: body.Section,
			Tier: body.Tier, Quantity: body.Quantity, AllowSplit: body.AllowSplit}, true)
	case len(parts) == 2 && parts[0] == "holds" && method == fasthttp.MethodGet:
		s.store(ctx, wire.SubjectHoldGet, wire.StoreRequest{HoldID: parts[1]}, false)
	case len(parts) == 2 && parts[0] == "holds" && method == fasthttp.MethodDelete:
		s.store(ctx, wire.SubjectRelease, wire.StoreRequest{HoldID: parts[1]}, true)
	case len(parts) == 3 && parts[0] == "holds" && parts[2] == "checkout" && method == fasthttp.MethodPost:
		s.store(ctx, wire.SubjectCheckout, wire.StoreRequest{HoldID: parts[1]}, true)
	case len(parts) == 3 && parts[0] == "holds" && parts[2] == "pay" && method == fasthttp.MethodPost:
		var body wire.PayBody
		if err := decode(ctx, &body); err != nil {
			s.writeError(ctx, err)
			return
		}
		if body.Card == "" || len(body.Card) > 32 {
			s.writeError(ctx, waitroom.Errorf(waitroom.EINVALID, "card must be 1 to 32 characters"))
			return
		}
		s.store(ctx, wire.SubjectPay, wire.StoreRequest{HoldID: parts[1], IdempotencyKey: idem, Card: body.Card}, true)
	case len(parts) == 2 && parts[0] == "orders" && method == fasthttp.MethodGet:
		s.store(ctx, wire.SubjectOrderGet, wire.StoreRequest{OrderID: parts[1]}, false)
	case len(parts) == 3 && parts[0] == "orders" && parts[2] == "cancel" && method == fasthttp.MethodPost:
		s.store(ctx, wire.SubjectCancel, wire.StoreRequest{OrderID: parts[1]}, false)
	default:
		s.writeError(ctx, waitroom.Errorf(waitroom.ENOTFOUND, "no route %s %s", method, ctx.Path()))
	}
}

// store checks the fan's token locally, so forged or expired tokens never
// reach the core, then forwards the request to the core over NATS and
// relays its answer. With admit set the token must be an admission token;
// otherwise a queue ticket of the same session also works (reads).
func (s *Server) store(ctx *fasthttp.RequestCtx, subject string, req wire.StoreRequest, admit bool) {
	tok := bearer(ctx)
	if tok == "" {
		what := "admission token"
		if !admit {
			what = "ticket or admission token"
		}
		s.writeError(ctx, waitroom.Errorf(waitroom.EUNAUTHORIZED, "missing %s: send Authorization: Bearer <token>", what))
		return
	}
	c, err := s.verifier.Verify(tok, token.KindAdmit, s.now())
	if err != nil && !admit {
		// Reads also take the queue ticket; report an expired admission
		// as expired rather than as the wrong kind of token.
		tc, terr := s.verifier.Verify(tok, token.KindTicket, s.now())
		if terr == nil || !errors.Is(err, waitroom.ErrTokenExpired) {
			c, err = tc, terr
		}
	}
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	if req.Sale != "" && req.Sale != c.Sale {
		s.writeError(ctx, waitroom.Errorf(waitroom.EUNAUTHORIZED, "token is for another sale"))
		return
	}
	req.V, req.Token = wire.Version, tok

	body, _ := json.Marshal(req)
	rctx, cancel := s.reqContext(s.cfg.StoreTimeout)
	defer cancel()
	start := time.Now()
	msg, err := s.nc.RequestWithContext(rctx, subject, body)
	if err != nil {
		if !errors.Is(err, nats.ErrNoResponders) {
			s.log.Warn("store request failed", logkey.Subject, subject, logkey.Elapsed, time.Since(start), logkey.Err, err)
		}
		s.writeError(ctx, &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "the store is not reachable; retry in a few seconds"})
		return
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		s.writeError(ctx, err)
		return
	}
	if err := reply.Err(); err != nil {
		s.writeError(ctx, err)
		return
	}
	status := fasthttp.StatusOK
	if subject == wire.SubjectHold {
		status = fasthttp.StatusCreated
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(reply.Data)
}
