// Package launch starts the whole of Taquilla in one process: an embedded
// NATS server with JetStream, a PostgreSQL cluster it manages (or an
// external database), the catalog, one core and one edge. `taquilla run` and
// the load generator's smoke scenario both start the system through it.
package launch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/coreapp"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
	"github.com/taquilla/taquilla/core/pglocal"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/edge/edgeapp"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/natsembed"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/wire"
)

// Config configures a one-process system.
type Config struct {
	// DataDir holds JetStream's store, the PostgreSQL cluster and the keys.
	DataDir string
	// HTTPAddr is the edge's listen address.
	HTTPAddr string
	// NATSPort and NATSMonitorPort are the embedded server's ports; -1
	// picks free ones.
	NATSPort        int
	NATSMonitorPort int
	// NATSSyncAlways makes JetStream sync every message to disk before
	// acknowledging it.
	NATSSyncAlways bool
	// DatabaseURL points at an external PostgreSQL or CockroachDB; empty
	// starts a local PostgreSQL cluster in DataDir.
	DatabaseURL string
	// PostgresPort is the local cluster's port; 0 picks a free one.
	PostgresPort int
	// Catalog is "lux", "smoke" or the path of a catalog file.
	Catalog string
	// Payments configures the simulated payment provider: its latency and
	// decline rate.
	Payments payments.SimConfig
	// PaymentProvider is "http", the simulated provider as its own HTTP
	// server with webhooks, reached through the HTTP client with its
	// circuit breaker and rate limiter; or "inprocess", a simulator inside
	// the core, for benchmarks of the core alone.
	PaymentProvider string

	Core coreapp.Config
	Edge edgeapp.Config
}

// DefaultConfig returns the configuration of `taquilla run`.
func DefaultConfig() Config {
	return Config{
		DataDir:         "./data",
		HTTPAddr:        "127.0.0.1:8080",
		NATSPort:        4222,
		NATSMonitorPort: 8222,
		NATSSyncAlways:  true,
		PostgresPort:    5433,
		Catalog:         "lux",
		Payments:        payments.SimConfig{Latency: 300 * time.Millisecond},
		PaymentProvider: "http",
		Core:            coreapp.DefaultConfig(),
		Edge:            edgeapp.DefaultConfig(),
	}
}

// System is a running one-process Taquilla.
type System struct {
	NATS     *server.Server
	Postgres *pglocal.Cluster // nil with an external database
	DB       *postgres.DB
	Core     *coreapp.Core
	Edge     *edgeapp.Edge
	// Payments is the in-process simulator, or nil with the HTTP one.
	Payments *payments.Sim
	// PaymentServer is the simulated provider's HTTP server, or nil.
	PaymentServer *simserver.Server
	// URL is the edge's base URL; MonitorURL the NATS monitoring base URL.
	URL        string
	MonitorURL string
	NATSURL    string
	// Signer mints tickets and admission tokens; load generators that
	// drive the core directly use it.
	Signer *token.Signer
	// PromoterKey signs fan identities as a promoter's login would. It is
	// the development promoter's key, set only when the configuration
	// named no promoter keys.
	PromoterKey ed25519.PrivateKey

	log      *slog.Logger
	coreConn *nats.Conn
	edgeConn *nats.Conn
}

// Start brings the system up in dependency order. On error it stops what it
// had started.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (sys *System, err error) {
	sys = &System{log: log.With(logkey.Component, "launch")}
	defer func() {
		if err != nil {
			_ = sys.Close(context.WithoutCancel(ctx))
			sys = nil
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}

	sys.NATS, err = natsembed.Start(natsembed.Options{
		Port: cfg.NATSPort, HTTPPort: cfg.NATSMonitorPort, ServerName: "taquilla-local",
		StoreDir: filepath.Join(dataDir, "jetstream"), SyncAlways: cfg.NATSSyncAlways,
	}, log)
	if err != nil {
		return sys, err
	}
	sys.NATSURL = sys.NATS.ClientURL()
	sys.MonitorURL = natsembed.MonitorURL(sys.NATS)

	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		if dbURL, err = sys.startPostgres(ctx, dataDir, cfg.PostgresPort); err != nil {
			return sys, err
		}
	}
	sys.DB, err = postgres.Open(ctx, dbURL, 40, log)
	if err != nil {
		return sys, err
	}
	cat, err := catalog.Load(cfg.Catalog)
	if err != nil {
		return sys, err
	}
	if _, err := sys.DB.LoadCatalog(ctx, cat); err != nil {
		return sys, err
	}

	key, err := tokenKey(filepath.Join(dataDir, "keys"))
	if err != nil {
		return sys, err
	}
	signer := token.NewSigner(key)
	sys.Signer = signer
	verifier := token.NewVerifier(key.Public().(ed25519.PublicKey))
	if len(cfg.Edge.HTTP.PromoterKeys) == 0 {
		keys := filepath.Join(dataDir, "keys")
		if sys.PromoterKey, err = devPromoterKey(keys); err != nil {
			return sys, err
		}
		cfg.Edge.HTTP.PromoterKeys = []ed25519.PublicKey{sys.PromoterKey.Public().(ed25519.PublicKey)}
		sys.log.Info("development promoter key in use because no promoter keys are configured", logkey.Dir, keys)
	}
	if cfg.Edge.PoWKey == nil {
		if cfg.Edge.PoWKey, err = loadOrCreateSecret(filepath.Join(dataDir, "keys", "pow.key"), 32); err != nil {
			return sys, err
		}
	}

	// The edge's difficulty is each new queue's initial setting; operators
	// change it per sale through the control service.
	if cfg.Core.Initial.PoWDifficulty == nil {
		d := cfg.Edge.HTTP.Difficulty
		cfg.Core.Initial.PoWDifficulty = &d
	}
	if err := sys.startCore(ctx, cfg, verifier, log); err != nil {
		return sys, err
	}
	if err := sys.startEdge(ctx, cfg, signer, verifier, log); err != nil {
		return sys, err
	}
	return sys, nil
}

func (sys *System) startPostgres(ctx context.Context, dataDir string, port int) (string, error) {
	cl, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(dataDir, "postgres"), Port: port, Log: sys.log})
	if err != nil {
		return "", fmt.Errorf("start local postgresql: %w", err)
	}
	sys.Postgres = cl
	if err := cl.CreateDatabase(ctx, "taquilla"); err != nil {
		return "", err
	}
	return cl.URL("taquilla"), nil
}

func (sys *System) startCore(ctx context.Context, cfg Config, verifier *token.Verifier, log *slog.Logger) error {
	var err error
	sys.coreConn, err = nats.Connect(sys.NATSURL, nats.Name("taquilla-core"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect core to nats: %w", err)
	}
	var provider payments.Provider
	var hooks net.Listener
	var secret []byte
	switch cfg.PaymentProvider {
	case "inprocess":
		sys.Payments = payments.NewSim(cfg.Payments)
		provider = sys.Payments
	case "http", "":
		if provider, hooks, secret, err = sys.startPaymentServer(cfg, log); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown payment provider %q: use http or inprocess", cfg.PaymentProvider)
	}
	sys.Core, err = coreapp.New(cfg.Core, sys.coreConn, sys.DB, provider, verifier, log)
	if err != nil {
		return err
	}
	if hooks != nil {
		sys.Core.ServeWebhooks(hooks, secret)
	}
	return sys.Core.Start(ctx)
}

// startPaymentServer starts the simulated provider as an HTTP server on a
// free loopback port, sending webhooks to a listener the core will serve,
// and returns the HTTP client the core charges through.
func (sys *System) startPaymentServer(cfg Config, log *slog.Logger) (payments.Provider, net.Listener, []byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, nil, fmt.Errorf("webhook secret: %w", err)
	}
	hooks, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listen for payment webhooks: %w", err)
	}
	scfg := simserver.DefaultConfig()
	scfg.Latency, scfg.LatencyJitter = cfg.Payments.Latency, cfg.Payments.Latency/2
	scfg.DeclineRate = cfg.Payments.DeclineRate
	// A provider's default limit (Stripe's is 100 requests/s) would be
	// the bottleneck of an on-sale; promoters of this size get it raised.
	// The client stays under the simulator's limit.
	scfg.RateLimit, scfg.RateBurst = 1000, 200
	scfg.WebhookURL = "http://" + hooks.Addr().String() + "/webhooks/payments"
	scfg.WebhookSecret = secret
	sys.PaymentServer, err = simserver.New(scfg, log)
	if err != nil {
		_ = hooks.Close()
		return nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = hooks.Close()
		return nil, nil, nil, fmt.Errorf("listen for the payment simulator: %w", err)
	}
	sys.PaymentServer.Start(ln)
	hcfg := payments.DefaultHTTPConfig()
	hcfg.BaseURL = sys.PaymentServer.URL()
	hcfg.RateLimit, hcfg.RateBurst = 800, 100
	client, err := payments.NewHTTP(hcfg, log)
	if err != nil {
		_ = hooks.Close()
		return nil, nil, nil, err
	}
	return client, hooks, secret, nil
}

func (sys *System) startEdge(ctx context.Context, cfg Config, signer *token.Signer, verifier *token.Verifier, log *slog.Logger) error {
	var err error
	sys.edgeConn, err = nats.Connect(sys.NATSURL, nats.Name("taquilla-edge"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect edge to nats: %w", err)
	}
	sys.Edge, err = edgeapp.New(cfg.Edge, sys.edgeConn, signer, verifier, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sys.Edge.Start(sctx, ln); err != nil {
		_ = ln.Close()
		return err
	}
	sys.URL = "http://" + hostPort(ln.Addr())
	return nil
}

func hostPort(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "0.0.0.0:") || strings.HasPrefix(s, "[::]:") {
		return "localhost:" + s[strings.LastIndex(s, ":")+1:]
	}
	return s
}

// Close stops everything in reverse order: the edge first, so fans get
// close frames and no request reaches a stopped core, then the core, NATS
// connections, the database pool, PostgreSQL and the NATS server. It is
// safe on a partly started system.
func (sys *System) Close(ctx context.Context) error {
	var errs []error
	if sys.Edge != nil {
		sys.log.Info("stopping edge")
		errs = append(errs, sys.Edge.Close(ctx))
	}
	if sys.Core != nil {
		sys.log.Info("stopping core")
		errs = append(errs, sys.Core.Close())
	}
	for _, nc := range []*nats.Conn{sys.edgeConn, sys.coreConn} {
		if nc != nil {
			_ = nc.Drain()
		}
	}
	if sys.PaymentServer != nil {
		errs = append(errs, sys.PaymentServer.Close(ctx))
	}
	if sys.DB != nil {
		sys.DB.Close()
	}
	if sys.Postgres != nil {
		sys.log.Info("stopping postgresql")
		errs = append(errs, sys.Postgres.Stop(ctx))
	}
	if sys.NATS != nil {
		sys.log.Info("stopping nats")
		sys.NATS.Shutdown()
		sys.NATS.WaitForShutdown()
		sys.log.Info("nats stopped")
	}
	return errors.Join(errs...)
}

// SetControl changes a sale's queue settings through the core.
func (sys *System) SetControl(ctx context.Context, saleID string, ctl wire.Control, by string) error {
	return sys.Core.SetControl(ctx, saleID, ctl, by)
}
