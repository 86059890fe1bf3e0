// Command loadgen simulates an on-sale against Taquilla with real HTTP and
// WebSocket clients and checks the invariants afterwards.
//
//	loadgen smoke   starts the whole system itself (as `taquilla run` does,
//	                on free ports and a temporary data directory) and runs
//	                3,000 fans for one show of 1,000 seats
//	loadgen run     runs a scenario against a system that is already running
//
// Both end with one line "RESULT key=value ..." and exit non-zero when an
// invariant broke or seats stayed unsold while fans still wanted them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taquilla/taquilla/bench/scenario"
	"github.com/taquilla/taquilla/deploy/launch"
	"github.com/taquilla/taquilla/edge/clientip"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// net/http logs harmless notices, such as an edge closing an idle
	// connection with a 408, through the default logger at Info level;
	// keep the terminal for progress and the result.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

const usage = `Usage: loadgen <command> [flags]

Commands:
  smoke   start the whole system and run 3,000 fans for one show of 1,000 seats
  run     run a scenario against a running system (-url, -database-url, -sale)
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "smoke":
		return smoke(ctx, args[1:], stdout, stderr)
	case "run":
		return against(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func scenarioFlags(fs *flag.FlagSet, cfg *scenario.Config) {
	fs.IntVar(&cfg.Fans, "fans", cfg.Fans, "number of simulated fans")
	fs.IntVar(&cfg.MinTickets, "min-tickets", cfg.MinTickets, "fewest tickets a fan buys")
	fs.IntVar(&cfg.MaxTickets, "max-tickets", cfg.MaxTickets, "most tickets a fan buys")
	fs.DurationVar(&cfg.ArrivalSpread, "arrival", cfg.ArrivalSpread, "fans arrive spread over this long")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "stop the scenario after this long")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
}

func defaultScenario() scenario.Config {
	return scenario.Config{Sale: "smoke-1", Fans: 3000, MinTickets: 1, MaxTickets: 4,
		ArrivalSpread: 5 * time.Second, Timeout: 5 * time.Minute, Seed: 1}
}

func validate(cfg scenario.Config) error {
	var errs []error
	if cfg.Fans < 1 || cfg.Fans > 15000 {
		errs = append(errs, fmt.Errorf("-fans must be 1 to 15000 in one process (open files are limited), got %d", cfg.Fans))
	}
	if cfg.MinTickets < 1 || cfg.MaxTickets < cfg.MinTickets || cfg.MaxTickets > 6 {
		errs = append(errs, fmt.Errorf("-min-tickets and -max-tickets must satisfy 1 <= min <= max <= 6"))
	}
	if cfg.Timeout <= 0 || cfg.Timeout > time.Hour {
		errs = append(errs, fmt.Errorf("-timeout must be above 0 and at most 1h"))
	}
	return errors.Join(errs...)
}

// smoke starts the system through the same launcher as `taquilla run`.
func smoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen smoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scfg := defaultScenario()
	scenarioFlags(fs, &scfg)
	declines := fs.Float64("decline-rate", 0.10, "fraction of payments the simulated provider declines")
	rate := fs.Int("rate", 6000, "fans admitted per minute")
	capacity := fs.Int("cap", 300, "fans shopping at once")
	difficulty := fs.Int("pow-difficulty", 8, "proof-of-work difficulty in bits")
	keep := fs.Bool("keep", false, "keep the temporary data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validate(scfg); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "taquilla-smoke-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	// The local PostgreSQL server runs as user postgres when we are root
	// and must be able to enter the directory.
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	cfg := launch.DefaultConfig()
	cfg.DataDir = dir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATSPort, cfg.NATSMonitorPort, cfg.PostgresPort = -1, -1, 0
	cfg.Catalog = "smoke"
	cfg.Payments.DeclineRate = *declines
	cfg.Payments.Latency = 50 * time.Millisecond
	cfg.Core.Initial.RatePerMinute, cfg.Core.Initial.Cap = *rate, *capacity
	cfg.Edge.HTTP.Difficulty = *difficulty
	// Every simulated fan comes through the loopback "proxy" with its own
	// X-Forwarded-For address, so per-address limits apply per fan.
	if cfg.Edge.HTTP.Trusted, err = clientip.ParseTrusted("127.0.0.1/32"); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	fmt.Fprintf(stderr, "starting the system in %s\n", dir)
	sys, err := launch.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sys.Close(sctx); err != nil {
			fmt.Fprintln(stderr, "loadgen: stop system:", err)
		}
	}()
	scfg.URL = sys.URL
	return runScenario(ctx, scfg, sys.DB.Pool, stdout, stderr)
}

// against runs a scenario against a running system.
func against(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scfg := defaultScenario()
	fs.StringVar(&scfg.URL, "url", "http://127.0.0.1:8080", "base URL of an edge on loopback; the edge must trust 127.0.0.1 as a proxy for per-fan limits")
	fs.StringVar(&scfg.Sale, "sale", "lux-mad-0330", "on-sale to buy from")
	dbURL := fs.String("database-url", "postgres://postgres@127.0.0.1:5433/taquilla?sslmode=disable", "database to check the invariants against")
	scenarioFlags(fs, &scfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := validate(scfg); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer pool.Close()
	return runScenario(ctx, scfg, pool, stdout, stderr)
}

func runScenario(ctx context.Context, cfg scenario.Config, pool *pgxpool.Pool, stdout, stderr io.Writer) error {
	stock := func(ctx context.Context) (int, int, error) {
		var unsold, total int
		err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state <> 'SOLD'), count(*) FROM seats WHERE sale_id = $1`, cfg.Sale).Scan(&unsold, &total)
		return unsold, total, err
	}
	if _, total, err := stock(ctx); err != nil || total == 0 {
		return fmt.Errorf("sale %s has no seats in the database (%v)", cfg.Sale, err)
	}
	fmt.Fprintf(stderr, "running %d fans against %s, sale %s\n", cfg.Fans, cfg.URL, cfg.Sale)
	told, elapsed, runErr := scenario.Run(ctx, cfg, stock, stderr)
	res, err := scenario.Check(context.WithoutCancel(ctx), pool, cfg.URL, cfg.Sale, told, elapsed)
	if err != nil {
		return fmt.Errorf("check invariants: %w", err)
	}
	for _, s := range res.Samples {
		fmt.Fprintln(stderr, "sample:", s)
	}
	fmt.Fprintln(stdout, res.Line())
	if runErr != nil {
		return runErr
	}
	if !res.OK() {
		return errors.New("an invariant broke, a fan met an error, or seats stayed unsold while fans wanted them")
	}
	return nil
}
