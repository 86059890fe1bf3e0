// Package httpd is the edge's fasthttp server: the fan page, the JSON API,
// the WebSocket and the polling fallback. Middleware runs in this order:
// panic recovery, client address, per-address rate limit (on routes that
// create work), then the handler.
package httpd

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/nats-io/nats.go"
	"github.com/valyala/fasthttp"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/edge/clientip"
	"github.com/taquilla/taquilla/edge/lobby"
	"github.com/taquilla/taquilla/edge/ratelimit"
	"github.com/taquilla/taquilla/edge/web"
	"github.com/taquilla/taquilla/edge/ws"
	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Config configures the server.
type Config struct {
	// Trusted lists proxies whose X-Forwarded-For is believed.
	Trusted []netip.Prefix
	// Difficulty is the proof-of-work difficulty in leading zero bits for
	// sales whose operator has not set one on the queue stream.
	Difficulty int
	// StrictBots rejects clients that send no browser-like headers.
	StrictBots bool
	// MaxBody bounds request bodies, in bytes.
	MaxBody int
	// StoreTimeout bounds one request to the core.
	StoreTimeout time.Duration
	// PromoterKeys verify the fan identities that joins carry. Without
	// any, a join with an identity is rejected, and so is every join to
	// a sale that requires one.
	PromoterKeys []ed25519.PublicKey
}

// DefaultConfig returns the defaults: difficulty 14, 8 KiB bodies.
func DefaultConfig() Config {
	return Config{Difficulty: 14, MaxBody: 8 << 10, StoreTimeout: 30 * time.Second}
}

// Server serves fans.
type Server struct {
	cfg        Config
	lobby      *lobby.Lobby
	hub        *ws.Hub
	nc         *nats.Conn
	verifier   *token.Verifier
	identities *identity.Verifier // promoter-signed fan identities
	pow        *botfilter.PoW
	limits     *ratelimit.Table
	log        *slog.Logger
	now        func() time.Time

	srv      *fasthttp.Server
	upgrader websocket.FastHTTPUpgrader
	ctx      context.Context // base of per-request contexts; ends at Close
	cancel   context.CancelFunc
	done     chan error
}

// New returns a Server; Start serves it on a listener.
func New(cfg Config, l *lobby.Lobby, hub *ws.Hub, nc *nats.Conn, verifier *token.Verifier, pow *botfilter.PoW, limits *ratelimit.Table, log *slog.Logger) *Server {
	s := &Server{cfg: cfg, lobby: l, hub: hub, nc: nc, verifier: verifier, pow: pow, limits: limits,
		log: log.With(logkey.Component, "edge.httpd"), now: time.Now}
	s.identities = identity.NewVerifier(cfg.PromoterKeys...)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.upgrader = websocket.FastHTTPUpgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		// The ticket in the query authenticates the socket; any origin may
		// show a fan their own place.
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
	}
	s.srv = &fasthttp.Server{
		Handler:            s.recoverer(s.route),
		Name:               "taquilla-edge",
		MaxRequestBodySize: cfg.MaxBody,
		ReadTimeout:        15 * time.Second,
		WriteTimeout:       35 * time.Second,
		IdleTimeout:        60 * time.Second,
		ReadBufferSize:     8 << 10,
		// Hostile clients must not make the edge log per request; errors
		// of malformed requests are counted by fasthttp and dropped.
		Logger:                       fasthttpLogger{},
		ErrorHandler:                 s.requestError,
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
	}
	return s
}

// Start serves on ln in the background.
func (s *Server) Start(ln net.Listener) {
	s.done = make(chan error, 1)
	go func() { s.done <- s.srv.Serve(ln) }()
}

// Close stops accepting requests and waits for those running, up to ctx.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	err := s.srv.ShutdownWithContext(ctx)
	if s.done != nil {
		if serr := <-s.done; serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// requestError answers requests that fasthttp could not read with the same
// JSON errors as every other route: an oversized body or header, a client
// that sent nothing before the read timeout, or a malformed request.
func (s *Server) requestError(ctx *fasthttp.RequestCtx, err error) {
	status, msg := fasthttp.StatusBadRequest, "malformed HTTP request"
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, msg = fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", s.cfg.MaxBody)
	case errors.As(err, &small):
		status, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers are too large"
	case errors.As(err, &netErr) && netErr.Timeout():
		status, msg = fasthttp.StatusRequestTimeout, "no request received in time"
	}
	s.writeJSON(ctx, status, wire.ErrorBody{Error: wire.ErrorDetail{Code: waitroom.EINVALID, Message: msg}})
}

type fasthttpLogger struct{}

func (fasthttpLogger) Printf(string, ...any) {}

func (s *Server) recoverer(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("handler panic", logkey.Path, string(ctx.Path()), logkey.Err, fmt.Errorf("%v", r))
				s.writeError(ctx, errors.New("panic"))
			}
		}()
		next(ctx)
	}
}

func (s *Server) route(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	method := string(ctx.Method())
	switch {
	case path == "/" && method == fasthttp.MethodGet:
		s.page(ctx)
	case strings.HasPrefix(path, "/static/") && method == fasthttp.MethodGet:
		s.asset(ctx, strings.TrimPrefix(path, "/static/"))
	case path == "/healthz":
		s.writeJSON(ctx, fasthttp.StatusOK, map[string]any{"ok": true, "nats": s.nc.IsConnected()})
	case path == "/api/v1/sales" && method == fasthttp.MethodGet:
		s.writeJSON(ctx, fasthttp.StatusOK, wire.SalesResponse{Sales: s.lobby.Sales()})
	case path == "/api/v1/status" && method == fasthttp.MethodGet:
		s.status(ctx)
	case path == "/api/v1/leave" && method == fasthttp.MethodPost:
		s.leave(ctx)
	case path == "/api/v1/ws" && method == fasthttp.MethodGet:
		s.websocket(ctx)
	case strings.HasPrefix(path, "/api/v1/sales/"):
		s.routeSale(ctx, method, strings.Split(strings.TrimPrefix(path, "/api/v1/sales/"), "/"))
	case strings.HasPrefix(path, "/api/v1/holds") || strings.HasPrefix(path, "/api/v1/orders/"):
		s.routeStore(ctx, method, strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/"))
	case strings.HasPrefix(path, "/api/"):
		s.writeError(ctx, waitroom.Errorf(waitroom.ENOTFOUND, "no route %s %s", method, path))
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

func (s *Server) routeSale(ctx *fasthttp.RequestCtx, method string, parts []string) {
	if len(parts) != 2 || !wire.ValidSaleID(parts[0]) {
		s.writeError(ctx, waitroom.Errorf(waitroom.ENOTFOUND, "no such route"))
		return
	}
	sale := parts[0]
	switch {
	case parts[1] == "challenge" && method == fasthttp.MethodGet:
		s.challenge(ctx, sale)
	case parts[1] == "join" && method == fasthttp.MethodPost:
		s.join(ctx, sale)
	case parts[1] == "seatmap" && method == fasthttp.MethodGet:
		s.store(ctx, wire.SubjectSeatMap, wire.StoreRequest{Sale: sale}, true)
	default:
		s.writeError(ctx, waitroom.Errorf(waitroom.ENOTFOUND, "no route %s %s", method, ctx.Path()))
	}
}

// clientAddr returns the fan's address, believing forwarding headers only
// from trusted proxies.
func (s *Server) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
	}
	peer = peer.Unmap()
	if len(s.cfg.Trusted) == 0 {
		return peer
	}
	return clientip.From(peer, string(ctx.Request.Header.Peek("X-Forwarded-For")), s.cfg.Trusted)
}

// allow applies the per-address rate limit and writes 429 when it trips.
// Rejections are counted by the limiter, not logged.
func (s *Server) allow(ctx *fasthttp.RequestCtx) bool {
	ok, retry := s.limits.Allow(s.clientAddr(ctx), s.now())
	if ok {
		return true
	}
	secs := max(int(retry.Seconds()+0.999), 1)
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(secs))
	s.writeError(ctx, waitroom.Errorf(waitroom.ERATELIMITED, "too many requests from your network; retry in %d s", secs))
	return false
}

// reqContext derives a per-request context from the server's base context:
// fasthttp's RequestCtx is done only at server shutdown.
func (s *Server) reqContext(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, d)
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, so typos in a client are found at once.
func decode(ctx *fasthttp.RequestCtx, dst any) error {
	body := ctx.PostBody()
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return waitroom.Errorf(waitroom.EINVALID, "malformed JSON body: %s", jsonProblem(err))
	}
	if dec.More() {
		return waitroom.Errorf(waitroom.EINVALID, "malformed JSON body: trailing data after the object")
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	return "not a JSON object"
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(ctx *fasthttp.RequestCtx) string {
	h := string(ctx.Request.Header.Peek("Authorization"))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// statusOf maps error codes to HTTP statuses. It is the only such table.
func statusOf(code string) int {
	switch code {
	case waitroom.EINVALID:
		return fasthttp.StatusBadRequest
	case waitroom.EUNAUTHORIZED:
		return fasthttp.StatusUnauthorized
	case waitroom.ERATELIMITED:
		return fasthttp.StatusTooManyRequests
	case waitroom.ENOTFOUND:
		return fasthttp.StatusNotFound
	case waitroom.ECONFLICT:
		return fasthttp.StatusConflict
	case waitroom.ESOLDOUT:
		return fasthttp.StatusGone
	case waitroom.EUNAVAILABLE:
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusInternalServerError
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, err error) {
	code := waitroom.ErrorCode(err)
	if code == waitroom.EINTERNAL {
		s.log.Error("request failed", logkey.Method, string(ctx.Method()), logkey.Path, string(ctx.Path()), logkey.Err, err)
	}
	if code == waitroom.EUNAVAILABLE && len(ctx.Response.Header.Peek("Retry-After")) == 0 {
		ctx.Response.Header.Set("Retry-After", "2")
	}
	s.writeJSON(ctx, statusOf(code), wire.NewErrorBody(err))
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = fasthttp.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(body)
}

func (s *Server) page(ctx *fasthttp.RequestCtx) {
	lang := web.PickLang(string(ctx.Request.Header.Peek("Accept-Language")), string(ctx.QueryArgs().Peek("lang")))
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("Content-Language", lang)
	ctx.Response.Header.Set("Vary", "Accept-Language")
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; worker-src 'self' blob:; img-src 'self' data:")
	ctx.SetBody(web.Page(lang))
}

func (s *Server) asset(ctx *fasthttp.RequestCtx, name string) {
	body, ctype, ok := web.Asset(name)
	if !ok {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	ctx.SetContentType(ctype)
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.SetBody(body)
}
