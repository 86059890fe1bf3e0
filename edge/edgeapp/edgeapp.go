// Package edgeapp wires an edge together: the queue lobby, the WebSocket
// hub, the rate limiter, the proof-of-work issuer and the HTTP server. The
// edge binaries and the one-process launcher start it, and so do end-to-end
// tests.
package edgeapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/edge/httpd"
	"github.com/taquilla/taquilla/edge/lobby"
	"github.com/taquilla/taquilla/edge/ratelimit"
	"github.com/taquilla/taquilla/edge/ws"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/wire"
)

// Config configures an edge.
type Config struct {
	HTTP   httpd.Config
	WS     ws.Config
	Limits ratelimit.Config
	// Region names the edge's region in join messages.
	Region string
	// PoWKey signs proof-of-work challenges; every edge of a deployment
	// shares it, so a challenge fetched from one edge verifies at another.
	PoWKey []byte
	// ChallengeTTL is how long a proof-of-work challenge stays valid.
	ChallengeTTL time.Duration
}

// DefaultConfig returns the defaults of every part.
func DefaultConfig() Config {
	return Config{
		HTTP:         httpd.DefaultConfig(),
		WS:           ws.DefaultConfig(),
		Limits:       ratelimit.DefaultConfig(),
		Region:       "local",
		ChallengeTTL: 5 * time.Minute,
	}
}

// Edge is a running edge.
type Edge struct {
	cfg    Config
	log    *slog.Logger
	lobby  *lobby.Lobby
	hub    *ws.Hub
	limits *ratelimit.Table
	server *httpd.Server

	addr   net.Addr
	stop   chan struct{}
	wg     sync.WaitGroup
	closed bool
}

// New returns an edge; Start runs it.
func New(cfg Config, nc *nats.Conn, signer *token.Signer, verifier *token.Verifier, log *slog.Logger) (*Edge, error) {
	if len(cfg.PoWKey) < 16 {
		return nil, fmt.Errorf("edge: proof-of-work key must be at least 16 bytes")
	}
	l, err := lobby.New(nc, signer, cfg.Region, log)
	if err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, log: log.With(logkey.Component, "edge"), lobby: l, stop: make(chan struct{})}
	e.hub = ws.NewHub(cfg.WS, l.Status, log)
	l.OnAdmitted = e.hub.Notify
	l.OnChanged = e.hub.NotifySale
	e.limits = ratelimit.New(cfg.Limits)
	pow := botfilter.NewPoW(cfg.PoWKey, cfg.ChallengeTTL)
	e.server = httpd.New(cfg.HTTP, l, e.hub, nc, verifier, pow, e.limits, log)
	return e, nil
}

// Start loads the sales, waits for the queues to be followed, and serves
// HTTP on ln.
func (e *Edge) Start(ctx context.Context, ln net.Listener) error {
	if err := e.lobby.Start(ctx); err != nil {
		return err
	}
	e.server.Start(ln)
	e.addr = ln.Addr()
	e.wg.Add(1)
	go e.sweepLimits()
	e.log.Info("edge listening", logkey.Addr, ln.Addr().String(), logkey.Region, e.cfg.Region)
	if n := len(e.cfg.HTTP.PromoterKeys); n > 0 {
		e.log.Info("promoter keys loaded", logkey.Count, n)
	} else {
		e.log.Warn("no promoter keys configured, so joins with a fan identity are rejected")
	}
	return nil
}

func (e *Edge) sweepLimits() {
	defer e.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.limits.Sweep(now)
		}
	}
}

// Addr returns the address the edge serves on.
func (e *Edge) Addr() net.Addr { return e.addr }

// Lobby returns the edge's queue view.
func (e *Edge) Lobby() *lobby.Lobby { return e.lobby }

// Status returns a fan's status as this edge computes it.
func (e *Edge) Status(sale, session string) wire.Status { return e.lobby.Status(sale, session) }

// Close stops the HTTP server (waiting for requests up to ctx), closes the
// WebSockets with a close frame, and stops following the queues.
func (e *Edge) Close(ctx context.Context) error {
	if e.closed {
		return nil
	}
	e.closed = true
	close(e.stop)
	e.hub.Close()
	err := e.server.Close(ctx)
	e.lobby.Close()
	e.wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
