// Command taquilla runs Taquilla. `taquilla run` starts the whole system in
// one process: embedded NATS with JetStream, a local PostgreSQL cluster (or
// an external database), the LUX Tour catalog, the core and one edge.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "taquilla:", err)
		}
		os.Exit(1)
	}
}

const usage = `Usage: taquilla <command> [flags]

Commands:
  run     start the whole system in one process (NATS, PostgreSQL, core, edge)
  pow     solve a proof-of-work challenge (for joining a queue with curl)
  watch   print the status frames a ticket's WebSocket receives
  ctl     steer running sales: schedule, open, pause, resume, rate, cap, lanes, codes, removals, stats
  verify  recompute a sale's shuffle and admission order from its queue stream
  catalog check a tour catalog file: catalog check FILE
  identity sign a fan identity as a promoter's login does: identity sign --key FILE --sub ID --aud SALE

Run "taquilla <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	switch args[0] {
	case "run":
		return runAll(ctx, args[1:], getenv, stdout, stderr)
	case "pow":
		return runPoW(args[1:], stdout, stderr)
	case "watch":
		return runWatch(ctx, args[1:], stdout, stderr)
	case "ctl":
		return runCtl(ctx, args[1:], getenv, stdout, stderr)
	case "verify":
		return runVerify(ctx, args[1:], getenv, stdout, stderr)
	case "catalog":
		return runCatalog(args[1:], stdout, stderr)
	case "identity":
		return runIdentity(args[1:], time.Now(), stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid log format %q: use text or json", format)
}
