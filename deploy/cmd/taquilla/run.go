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
	"github.com/taquilla/taquilla/shared/identity"
)

// runConfig is the configuration of `taquilla run`.
type runConfig struct {
	launch.Config
	LogLevel    string
	LogFormat   string
	Trusted     string
	CheckConfig bool
	// PromoterKeys is the file of promoter public keys, one a line.
	PromoterKeys string
}

// envFlags registers flags whose defaults come from TAQUILLA_ environment
// variables, so every flag can also be set in the environment. A variable
// that does not parse is reported by validate, not ignored.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

func (e *envFlags) env(name string) (string, bool) {
	v := e.getenv("TAQUILLA_" + name)
	return v, v != ""
}

func (e *envFlags) bad(name, value, want string) {
	e.errs = append(e.errs, fmt.Errorf("TAQUILLA_%s=%q is not %s", name, value, want))
}

func (e *envFlags) String(p *string, flagName, name, def, usage string) {
	if v, ok := e.env(name); ok {
		def = v
	}
	e.fs.StringVar(p, flagName, def, usage+" (env TAQUILLA_"+name+")")
}

func (e *envFlags) Int(p *int, flagName, name string, def int, usage string) {
	if v, ok := e.env(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.bad(name, v, "an integer")
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, flagName, def, usage+" (env TAQUILLA_"+name+")")
}

func (e *envFlags) Float(p *float64, flagName, name string, def float64, usage string) {
	if v, ok := e.env(name); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			e.bad(name, v, "a number")
		} else {
			def = f
		}
	}
	e.fs.Float64Var(p, flagName, def, usage+" (env TAQUILLA_"+name+")")
}

func (e *envFlags) Bool(p *bool, flagName, name string, def bool, usage string) {
	if v, ok := e.env(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.bad(name, v, "true or false")
		} else {
			def = b
		}
	}
	e.fs.BoolVar(p, flagName, def, usage+" (env TAQUILLA_"+name+")")
}

func (e *envFlags) Duration(p *time.Duration, flagName, name string, def time.Duration, usage string) {
	if v, ok := e.env(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.bad(name, v, "a duration such as 90s or 10m")
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, flagName, def, usage+" (env TAQUILLA_"+name+")")
}

func (c *runConfig) flags(fs *flag.FlagSet, getenv func(string) string) *envFlags {
	d := launch.DefaultConfig()
	c.Config = d
	e := &envFlags{fs: fs, getenv: getenv}
	e.String(&c.DataDir, "data-dir", "DATA_DIR", d.DataDir, "directory for JetStream, the local PostgreSQL cluster and keys")
	e.String(&c.HTTPAddr, "http", "HTTP", d.HTTPAddr, "address of the fan page and API")
	e.Int(&c.NATSPort, "nats-port", "NATS_PORT", d.NATSPort, "port of the embedded NATS server, -1 for a free one")
	e.Int(&c.NATSMonitorPort, "nats-monitor-port", "NATS_MONITOR_PORT", d.NATSMonitorPort, "port of NATS monitoring (/varz, /jsz), -1 for a free one, 0 to turn it off")
	e.Bool(&c.NATSSyncAlways, "nats-sync-always", "NATS_SYNC_ALWAYS", d.NATSSyncAlways, "sync every JetStream message to disk before acknowledging it; false trades durability on power loss for latency")
	e.String(&c.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL or CockroachDB URL; empty starts a local PostgreSQL cluster in the data dir")
	e.Int(&c.PostgresPort, "postgres-port", "POSTGRES_PORT", d.PostgresPort, "port of the local PostgreSQL cluster on 127.0.0.1, 0 for a free one")
	e.String(&c.Catalog, "catalog", "CATALOG", d.Catalog, "tour catalog: lux, smoke or a catalog file")
	e.Int(&c.Core.Initial.RatePerMinute, "rate", "RATE", d.Core.Initial.RatePerMinute, "fans admitted per minute when a sale's queue is created")
	e.Int(&c.Core.Initial.Cap, "cap", "CAP", d.Core.Initial.Cap, "maximum fans shopping at once when a sale's queue is created")
	e.Int(&c.Edge.HTTP.Difficulty, "pow-difficulty", "POW_DIFFICULTY", d.Edge.HTTP.Difficulty, "proof-of-work difficulty in leading zero bits, 0 to 32")
	e.Duration(&c.Core.Inventory.HoldTTL, "hold-ttl", "HOLD_TTL", d.Core.Inventory.HoldTTL, "how long seats stay in a cart")
	e.Duration(&c.Core.Inventory.CheckoutTTL, "checkout-ttl", "CHECKOUT_TTL", d.Core.Inventory.CheckoutTTL, "how long a fan has to pay once in checkout")
	e.Duration(&c.Payments.Latency, "payment-latency", "PAYMENT_LATENCY", d.Payments.Latency, "latency of the simulated payment provider")
	e.String(&c.PaymentProvider, "payments", "PAYMENTS", d.PaymentProvider, "simulated payment provider: http (its own HTTP server with webhooks) or inprocess")
	e.Float(&c.Payments.DeclineRate, "payment-decline-rate", "PAYMENT_DECLINE_RATE", d.Payments.DeclineRate, "fraction of payments the simulated provider declines at random, 0 to 1")
	e.String(&c.PromoterKeys, "promoter-keys", "PROMOTER_KEYS", "", "file of promoter Ed25519 public keys that verify fan identities, one base64 key a line; empty generates a development key pair in the data dir's keys directory")
	e.String(&c.Trusted, "trusted-proxies", "TRUSTED_PROXIES", "", "comma-separated proxy addresses or prefixes whose X-Forwarded-For is believed")
	e.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	e.String(&c.LogFormat, "log-format", "LOG_FORMAT", "text", "text or json")
	e.Bool(&c.CheckConfig, "check-config", "CHECK_CONFIG", false, "validate the configuration, print it and exit")
	return e
}

// validate reports every problem at once, with those of the environment.
func (c *runConfig) validate(envErrs []error) error {
	errs := append([]error(nil), envErrs...)
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
	if c.PromoterKeys != "" {
		keys, err := identity.LoadPublicKeys(c.PromoterKeys)
		if err != nil {
			errs = append(errs, fmt.Errorf("-promoter-keys: %w", err))
		}
		c.Edge.HTTP.PromoterKeys = keys
	}
	return errors.Join(errs...)
}

func runAll(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg runConfig
	env := cfg.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := cfg.validate(env.errs); err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if cfg.CheckConfig {
		promoters := "development key in the data dir"
		if n := len(cfg.Edge.HTTP.PromoterKeys); n > 0 {
			promoters = strconv.Itoa(n) + " from " + cfg.PromoterKeys
		}
		fmt.Fprintf(stdout, "configuration is valid: data dir %s, http %s, catalog %s, rate %d/min, cap %d, database %s, promoter keys %s\n",
			cfg.DataDir, cfg.HTTPAddr, cfg.Catalog, cfg.Core.Initial.RatePerMinute, cfg.Core.Initial.Cap, redact(cfg.DatabaseURL), promoters)
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
	pay := "in process"
	if sys.PaymentServer != nil {
		pay = sys.PaymentServer.URL() + " (simulated)"
	}
	monitor := "off"
	if sys.MonitorURL != "" {
		monitor = sys.MonitorURL + "/jsz?streams=true"
	}
	fmt.Fprintf(stdout, `Taquilla is running.
  fan page         %s/
  API              %s/api/v1/sales
  NATS             %s
  NATS monitoring  %s
  database         %s
  payments         %s
Press Ctrl-C to stop.
`, sys.URL, sys.URL, sys.NATSURL, monitor, db, pay)

	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return sys.Close(sctx)
}
