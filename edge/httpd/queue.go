package httpd

import (
	"net/netip"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/edge/lobby"
	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// clientKey binds a challenge to the fan's network (IPv4 /24, IPv6 /48), so
// a solved challenge cannot be handed to a bot elsewhere, while a phone that
// hops between addresses of one carrier block keeps it.
func clientKey(a netip.Addr) string {
	bits := 24
	if a.Is6() && !a.Is4In6() {
		bits = 48
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a.String()
	}
	return p.String()
}

func (s *Server) challenge(ctx *fasthttp.RequestCtx, sale string) {
	if !s.allow(ctx) {
		return
	}
	if _, err := s.lobby.Closed(sale); err != nil {
		s.writeError(ctx, err)
		return
	}
	ch := s.pow.Issue(sale, clientKey(s.clientAddr(ctx)), s.lobby.Difficulty(sale, s.cfg.Difficulty), s.now())
	s.writeJSON(ctx, fasthttp.StatusOK, ch)
}

// join places a fan in a sale's queue. A fan who sends the ticket they hold,
// the Idempotency-Key of an earlier join, or the identity of a fan account
// that has a place gets that place back without a new proof of work.
func (s *Server) join(ctx *fasthttp.RequestCtx, sale string) {
	if !s.allow(ctx) {
		return
	}
	var req wire.JoinRequest
	if err := decode(ctx, &req); err != nil {
		s.writeError(ctx, err)
		return
	}
	closed, err := s.lobby.Closed(sale)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	rctx, cancel := s.reqContext(10 * time.Second)
	defer cancel()

	// An existing place: the identity's account, the ticket or the
	// idempotency key derives the same session.
	session, fan, err := s.joinSession(ctx, sale, req)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	if s.lobby.Known(sale, session) {
		// The place exists: the code, if any, is not used again.
		ticket, st, err := s.lobby.Join(rctx, sale, session, fan, "")
		if err != nil {
			s.writeError(ctx, err)
			return
		}
		s.writeJSON(ctx, fasthttp.StatusOK, wire.JoinResponse{Ticket: ticket, Status: st})
		return
	}

	// A new place.
	if closed != "" {
		s.writeError(ctx, waitroom.Errorf(waitroom.ESOLDOUT, "this show is sold out; the queue is closed"))
		return
	}
	if v := botfilter.CheckHeaders(string(ctx.UserAgent()), string(ctx.Request.Header.Peek("Accept-Language")), s.cfg.StrictBots); v.Bot {
		s.writeError(ctx, waitroom.Errorf(waitroom.EUNAUTHORIZED, "request rejected as automated: %s", v.Reason))
		return
	}
	if err := s.pow.Verify(sale, clientKey(s.clientAddr(ctx)), req.Challenge, req.Nonce, s.lobby.Difficulty(sale, s.cfg.Difficulty), s.now()); err != nil {
		s.writeError(ctx, err)
		return
	}
	ticket, st, err := s.lobby.Join(rctx, sale, session, fan, req.Code)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	s.writeJSON(ctx, fasthttp.StatusCreated, wire.JoinResponse{Ticket: ticket, Status: st})
}

// joinSession returns the session a join places and the fan account it
// records. With an identity, both come from the verified fan account, so
// every device and edge reaches the same place. A sale that requires an
// identity rejects a join without one here, before any proof of work is
// checked or anything is published. Otherwise the ticket, or else the
// Idempotency-Key, picks the session, and the fan is the ticket's.
func (s *Server) joinSession(ctx *fasthttp.RequestCtx, sale string, req wire.JoinRequest) (session, fan string, err error) {
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	if len(key) > 128 {
		return "", "", waitroom.Errorf(waitroom.EINVALID, "Idempotency-Key is longer than 128 characters")
	}
	if strings.HasPrefix(key, lobby.FanKeyPrefix) {
		return "", "", waitroom.Errorf(waitroom.EINVALID, "Idempotency-Key must not start with %q", lobby.FanKeyPrefix)
	}

	if req.Identity != "" {
		c, err := s.identities.Verify(req.Identity, sale, s.now())
		if err != nil {
			return "", "", err
		}
		fan = c.Account()
		return lobby.FanSession(sale, fan), fan, nil
	}
	if s.lobby.IdentityRequired(sale) {
		return "", "", identity.ErrRequired
	}

	if req.Ticket != "" {
		c, err := s.verifier.Verify(req.Ticket, token.KindTicket, s.now())
		if err != nil {
			return "", "", err
		}
		if c.Sale != sale {
			return "", "", waitroom.Errorf(waitroom.EUNAUTHORIZED, "ticket is for another sale")
		}
		return c.Session, c.Fan, nil
	}
	return lobby.SessionFor(sale, key), "", nil
}

// ticket verifies the ticket of a request: the bearer header, or the
// "ticket" query parameter for WebSockets, which browsers open without
// custom headers.
func (s *Server) ticket(ctx *fasthttp.RequestCtx) (token.Claims, error) {
	t := bearer(ctx)
	if t == "" {
		t = string(ctx.QueryArgs().Peek("ticket"))
	}
	if t == "" {
		return token.Claims{}, waitroom.Errorf(waitroom.EUNAUTHORIZED, "missing ticket: send Authorization: Bearer <ticket>")
	}
	return s.verifier.Verify(t, token.KindTicket, s.now())
}

func (s *Server) status(ctx *fasthttp.RequestCtx) {
	c, err := s.ticket(ctx)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, s.lobby.Status(c.Sale, c.Session))
}

func (s *Server) leave(ctx *fasthttp.RequestCtx) {
	c, err := s.ticket(ctx)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	rctx, cancel := s.reqContext(10 * time.Second)
	defer cancel()
	st, err := s.lobby.Leave(rctx, c.Sale, c.Session)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, st)
}

func (s *Server) websocket(ctx *fasthttp.RequestCtx) {
	c, err := s.ticket(ctx)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	err = s.upgrader.Upgrade(ctx, func(conn *websocketConn) {
		s.hub.Serve(conn, c.Sale, c.Session)
	})
	if err != nil {
		// The upgrader has written its own 400 response.
		return
	}
}
