package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/shared/wire"
)

// ctlCommand is one `taquilla ctl` command.
type ctlCommand struct {
	name, args, help string
	subject          string
	nargs            int
}

var ctlCommands = []ctlCommand{
	{"sales", "", "list the sales with their queue, settings and stock", wire.SubjectCtlSales, 0},
	{"stats", "SALE", "show one sale's queue, settings and stock", wire.SubjectCtlStats, 1},
	{"pause", "SALE", "stop admitting fans to a sale; waiting fans keep their places", wire.SubjectCtlPause, 1},
	{"resume", "SALE", "admit fans again after a pause", wire.SubjectCtlResume, 1},
	{"rate", "SALE FANS_PER_MINUTE", "set how many fans are admitted per minute (0 to 1000000)", wire.SubjectCtlRate, 2},
	{"cap", "SALE FANS", "set how many admitted fans may shop at once (0 to 10000000)", wire.SubjectCtlCap, 2},
	{"pow", "SALE BITS", "set the proof-of-work difficulty new fans must solve, in leading zero bits (0 to 32)", wire.SubjectCtlPoW, 2},
	{"remove", "SALE SESSION", "take a session out of the queue, such as a bot; fans behind it move up", wire.SubjectCtlRemove, 2},
}

func ctlUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: taquilla ctl [-nats URL] [-as NAME] COMMAND [ARGS]\n\nSteers running sales through the core's control service over NATS.\nEvery change is recorded on the sale's queue stream with the -as name.\n\nCommands:")
	for _, c := range ctlCommands {
		fmt.Fprintf(w, "  %-7s %-22s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w, "\nRun \"taquilla ctl COMMAND -h\" for one command's help.")
}

func runCtl(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", envOr(getenv, "TAQUILLA_NATS_URL", "nats://127.0.0.1:4222"), "NATS server of the core (env TAQUILLA_NATS_URL)")
	as := fs.String("as", envOr(getenv, "USER", "operator"), "operator name recorded with each change")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the core")
	fs.Usage = func() {
		ctlUsage(stderr)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("missing command")
	}
	cmd, ok := findCtl(fs.Arg(0))
	if !ok {
		ctlUsage(stderr)
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}
	rest := fs.Args()[1:]
	if len(rest) == 1 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help") {
		fmt.Fprintf(stdout, "Usage: taquilla ctl %s %s\n\n%s.\n", cmd.name, cmd.args, strings.ToUpper(cmd.help[:1])+cmd.help[1:])
		return nil
	}
	if len(rest) != cmd.nargs {
		return fmt.Errorf("%s takes %d argument(s): %s", cmd.name, cmd.nargs, cmd.args)
	}
	req := wire.ControlRequest{V: wire.Version, By: *as}
	if cmd.nargs >= 1 {
		req.Sale = rest[0]
	}
	if cmd.nargs == 2 && cmd.name == "remove" {
		req.Session = rest[1]
	} else if cmd.nargs == 2 {
		n, err := strconv.Atoi(rest[1])
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number", cmd.name, rest[1])
		}
		req.Value = &n
	}

	nc, err := nats.Connect(*url, nats.Name("taquilla-ctl"), nats.Timeout(*timeout))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *url, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, _ := json.Marshal(req)
	msg, err := nc.RequestWithContext(ctx, cmd.subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("no core answers on %s: is Taquilla running?", *url)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd.name, err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return fmt.Errorf("%s: malformed reply: %w", cmd.name, err)
	}
	if reply.Error != nil {
		return errors.New(reply.Error.Message)
	}
	if cmd.name == "sales" {
		var list []wire.SaleStatus
		if err := json.Unmarshal(reply.Data, &list); err != nil {
			return err
		}
		printSales(stdout, list)
		return nil
	}
	var st wire.SaleStatus
	if err := json.Unmarshal(reply.Data, &st); err != nil {
		return err
	}
	printStatus(stdout, st)
	return nil
}

func findCtl(name string) (ctlCommand, bool) {
	for _, c := range ctlCommands {
		if c.name == name {
			return c, true
		}
	}
	return ctlCommand{}, false
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func state(st wire.SaleStatus) string {
	switch {
	case st.Closed != "":
		return "closed (" + st.Closed + ")"
	case st.Control.Paused:
		return "paused"
	}
	return "open"
}

func difficulty(c wire.Control) string {
	if c.PoWDifficulty == nil {
		return "edge default"
	}
	return strconv.Itoa(*c.PoWDifficulty)
}

func printSales(w io.Writer, list []wire.SaleStatus) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SALE\tSTATE\tRATE/MIN\tCAP\tWAITING\tSHOPPING\tADMITTED\tAVAILABLE\tSOLD")
	for _, st := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", st.Sale, state(st), st.Control.RatePerMinute, st.Control.Cap,
			st.Waiting, st.Shopping, st.Admitted, st.Available, st.Sold)
	}
	_ = tw.Flush()
}

func printStatus(w io.Writer, st wire.SaleStatus) {
	fmt.Fprintf(w, `sale              %s (%s)
state             %s
rate              %d fans/min (%d admitted in the last minute)
cap               %d fans shopping at once (%d now)
proof of work     %s bits
queue             %d waiting, %d admitted, %d left, %d done, %d no-shows
seats             %d available, %d held, %d in checkout, %d sold
stream sequence   %d
`, st.Sale, st.Name, state(st), st.Control.RatePerMinute, st.AdmittedLastMinute, st.Control.Cap, st.Shopping,
		difficulty(st.Control), st.Waiting, st.Admitted, st.Left, st.Done, st.NoShows, st.Available, st.Held, st.InCheckout, st.Sold, st.LastSeq)
}
