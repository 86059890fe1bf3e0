package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/taquilla/taquilla/deploy/launch"
	"github.com/taquilla/taquilla/edge/clientip"
)

// runConfig is the configuration of `taquilla run`.
type runConfig struct {
	launch.Config
	LogLevel    string
	LogFormat   string
	Trusted     string
	CheckConfig bool
}

func (c *runConfig) flags(fs *flag.FlagSet, getenv func(string) string) {
	d := launch.DefaultConfig()
	c.Config = d
	env := func(name, def string) string {
		if v := getenv("TAQUILLA_" + name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		if v, err := strconv.Atoi(getenv("TAQUILLA_" + name)); err == nil {
			return v
		}
		return def
	}
	fs.StringVar(&c.DataDir, "data-dir", env("DATA_DIR", d.DataDir), "directory for JetStream, the local PostgreSQL cluster and keys (env TAQUILLA_DATA_DIR)")
	fs.StringVar(&c.HTTPAddr, "http", env("HTTP", d.HTTPAddr), "address of the fan page and API (env TAQUILLA_HTTP)")
	fs.IntVar(&c.NATSPort, "nats-port", envInt("NATS_PORT", d.NATSPort), "port of the embedded NATS server, -1 for a free one (env TAQUILLA_NATS_PORT)")
	fs.IntVar(&c.NATSMonitorPort, "nats-monitor-port", envInt("NATS_MONITOR_PORT", d.NATSMonitorPort), "port of NATS monitoring (/varz, /jsz), -1 for a free one, 0 to disable (env TAQUILLA_NATS_MONITOR_PORT)")
	fs.BoolVar(&c.NATSSyncAlways, "nats-sync-always", d.NATSSyncAlways, "sync every JetStream message to disk before acknowledging it; off trades durability on power loss for latency")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL or CockroachDB URL; empty starts a local PostgreSQL cluster in the data dir (env TAQUILLA_DATABASE_URL)")
	fs.IntVar(&c.PostgresPort, "postgres-port", envInt("POSTGRES_PORT", d.PostgresPort), "port of the local PostgreSQL cluster on 127.0.0.1, 0 for a free one (env TAQUILLA_POSTGRES_PORT)")
	fs.StringVar(&c.Catalog, "catalog", env("CATALOG", d.Catalog), "tour catalog: lux, smoke or a JSON file (env TAQUILLA_CATALOG)")
	fs.IntVar(&c.Core.Initial.RatePerMinute, "rate", envInt("RATE", d.Core.Initial.RatePerMinute), "fans admitted per minute when a sale's queue is created (env TAQUILLA_RATE)")
	fs.IntVar(&c.Core.Initial.Cap, "cap", envInt("CAP", d.Core.Initial.Cap), "maximum fans shopping at once when a sale's queue is created (env TAQUILLA_CAP)")
	fs.IntVar(&c.Edge.HTTP.Difficulty, "pow-difficulty", envInt("POW_DIFFICULTY", d.Edge.HTTP.Difficulty), "proof-of-work difficulty in leading zero bits, 0 to 32 (env TAQUILLA_POW_DIFFICULTY)")
	fs.DurationVar(&c.Core.Inventory.HoldTTL, "hold-ttl", d.Core.Inventory.HoldTTL, "how long seats stay in a cart")
	fs.DurationVar(&c.Core.Inventory.CheckoutTTL, "checkout-ttl", d.Core.Inventory.CheckoutTTL, "how long a fan has to pay once in checkout")
	fs.DurationVar(&c.Payments.Latency, "payment-latency", d.Payments.Latency, "latency of the simulated payment provider")
	fs.Float64Var(&c.Payments.DeclineRate, "payment-decline-rate", d.Payments.DeclineRate, "fraction of payments the simulated provider declines at random, 0 to 1")
	fs.StringVar(&c.Trusted, "trusted-proxies", env("TRUSTED_PROXIES", ""), "comma-separated proxy addresses or prefixes whose X-Forwarded-For is believed (env TAQUILLA_TRUSTED_PROXIES)")
	fs.StringVar(&c.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env TAQUILLA_LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (env TAQUILLA_LOG_FORMAT)")
	fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration, print it and exit")
}

// validate reports every problem at once.
func (c *runConfig) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("-data-dir must not be empty"))
	}
	if c.Core.Initial.RatePerMinute < 0 {
		errs = append(errs, fmt.Errorf("-rate must not be negative, got %d", c.Core.Initial.RatePerMinute))
	}
	if c.Core.Initial.Cap < 0 {
		errs = append(errs, fmt.Errorf("-cap must not be negative, got %d", c.Core.Initial.Cap))
	}
	if c.Edge.HTTP.Difficulty < 0 || c.Edge.HTTP.Difficulty > 32 {
		errs = append(errs, fmt.Errorf("-pow-difficulty must be 0 to 32, got %d", c.Edge.HTTP.Difficulty))
	}
	if c.Payments.DeclineRate < 0 || c.Payments.DeclineRate > 1 {
		errs = append(errs, fmt.Errorf("-payment-decline-rate must be 0 to 1, got %g", c.Payments.DeclineRate))
	}
	if c.Core.Inventory.HoldTTL <= 0 || c.Core.Inventory.CheckoutTTL <= 0 {
		errs = append(errs, errors.New("-hold-ttl and -checkout-ttl must be positive"))
	}
	trusted, err := clientip.ParseTrusted(c.Trusted)
	if err != nil {
		errs = append(errs, fmt.Errorf("-trusted-proxies: %w", err))
	}
	c.Edge.HTTP.Trusted = trusted
	return errors.Join(errs...)
}

func runAll(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg runConfig
	cfg.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if cfg.CheckConfig {
		fmt.Fprintf(stdout, "configuration is valid: data dir %s, http %s, catalog %s, rate %d/min, cap %d, database %s\n",
			cfg.DataDir, cfg.HTTPAddr, cfg.Catalog, cfg.Core.Initial.RatePerMinute, cfg.Core.Initial.Cap, redact(cfg.DatabaseURL))
		return nil
	}

	sys, err := launch.Start(ctx, cfg.Config, log)
	if err != nil {
		return err
	}
	db := "local PostgreSQL in " + cfg.DataDir + "/postgres"
	if sys.Postgres != nil {
		db += fmt.Sprintf(" (port %d)", sys.Postgres.Port())
	} else {
		db = redact(cfg.DatabaseURL)
	}
	fmt.Fprintf(stdout, `Taquilla is running.
  fan page         %s/
  API              %s/api/v1/sales
  NATS             %s
  NATS monitoring  %s/jsz?streams=true
  database         %s
Press Ctrl-C to stop.
`, sys.URL, sys.URL, sys.NATSURL, sys.MonitorURL, db)

	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sys.Close(sctx)
}
