package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
	{"identity", "--sale SALE --required=true|false", "require a fan identity signed by the promoter to join a sale, so each fan account gets one place; false lets fans join without one", wire.SubjectCtlIdentity, 2},
	{"remove", "SALE SESSION", "take a session out of the queue, such as a bot; fans behind it move up", wire.SubjectCtlRemove, 2},
	{"schedule", "SALE WHEN", "set the opening time (RFC 3339, or a delay such as 10m); fans who join before it wait in a pre-queue drawn at random at the opening", wire.SubjectCtlSchedule, 2},
	{"open", "SALE", "open a scheduled sale now and reveal its shuffle seed", wire.SubjectCtlOpen, 1},
	{"auto", "SALE MIN MAX", "let the core set the rate from its health (transaction time, retries, expired carts) between MIN and MAX fans per minute; MAX 0 turns it off, and so does ctl rate", wire.SubjectCtlAuto, 3},
	{"lane", "SALE LANE SHARE", "add a presale or accessibility lane, or change its share of each admission batch in percent (0 to 100)", wire.SubjectCtlLane, 3},
	{"codes", "SALE LANE USES CODE...", "add access codes to a lane, each valid for USES joins; a CODE of - reads codes from standard input, one per line", wire.SubjectCtlCodes, -3},
}

func ctlUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: taquilla ctl [-nats URL] [-as NAME] COMMAND [ARGS]\n\nSteers running sales through the core's control service over NATS.\nEvery change is recorded on the sale's queue stream with the -as name.\n\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, c := range ctlCommands {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", c.name, c.args, c.help)
	}
	_ = tw.Flush()
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
	if cmd.name == "identity" {
		// Flags, not positional arguments, so that the setting is named.
		var err error
		if rest, err = identityArgs(rest, stderr); err != nil {
			return err
		}
	}
	if (cmd.nargs >= 0 && len(rest) != cmd.nargs) || (cmd.nargs < 0 && len(rest) <= -cmd.nargs) {
		return fmt.Errorf("%s takes these arguments: %s", cmd.name, cmd.args)
	}
	req := wire.ControlRequest{V: wire.Version, By: *as}
	if len(rest) >= 1 {
		req.Sale = rest[0]
	}
	var codes []string
	switch cmd.name {
	case "remove":
		req.Session = rest[1]
	case "schedule":
		at, err := parseWhen(rest[1], time.Now())
		if err != nil {
			return err
		}
		req.At = at
	case "auto":
		lo, err1 := strconv.Atoi(rest[1])
		hi, err2 := strconv.Atoi(rest[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("auto: MIN and MAX are whole numbers of fans per minute, got %q and %q", rest[1], rest[2])
		}
		req.Value, req.Max = &lo, &hi
	case "lane", "codes":
		req.Lane = rest[1]
		n, err := strconv.Atoi(rest[2])
		if err != nil {
			return fmt.Errorf("%s: %q is not a whole number", cmd.name, rest[2])
		}
		req.Value = &n
		if cmd.name == "codes" {
			if codes, err = readCodes(rest[3:], stdin); err != nil {
				return err
			}
		}
	default:
		if cmd.nargs == 2 {
			n, err := strconv.Atoi(rest[1])
			if err != nil {
				return fmt.Errorf("%s: %q is not a whole number", cmd.name, rest[1])
			}
			req.Value = &n
		}
	}

	nc, err := nats.Connect(*url, nats.Name("taquilla-ctl"), nats.Timeout(*timeout))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *url, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	call := func(req wire.ControlRequest) (wire.StoreReply, error) {
		var reply wire.StoreReply
		body, _ := json.Marshal(req)
		msg, err := nc.RequestWithContext(ctx, cmd.subject, body)
		if errors.Is(err, nats.ErrNoResponders) {
			return reply, fmt.Errorf("no core answers on %s: is Taquilla running?", *url)
		}
		if err != nil {
			return reply, fmt.Errorf("%s: %w", cmd.name, err)
		}
		if err := json.Unmarshal(msg.Data, &reply); err != nil {
			return reply, fmt.Errorf("%s: malformed reply: %w", cmd.name, err)
		}
		if reply.Error != nil {
			return reply, errors.New(reply.Error.Message)
		}
		return reply, nil
	}
	var reply wire.StoreReply
	if cmd.name == "codes" {
		// Codes travel hashed, so the stream never holds them in the
		// clear, and in chunks that fit one stream message each.
		for i := 0; i < len(codes); i += codeChunk {
			req.Codes = nil
			for _, code := range codes[i:min(i+codeChunk, len(codes))] {
				req.Codes = append(req.Codes, wire.CodeHash(req.Sale, code))
			}
			if reply, err = call(req); err != nil {
				return fmt.Errorf("after %d of %d codes: %w", i, len(codes), err)
			}
		}
		noun := "codes"
		if len(codes) == 1 {
			noun = "code"
		}
		fmt.Fprintf(stdout, "added %d %s to lane %s\n", len(codes), noun, req.Lane)
	} else if reply, err = call(req); err != nil {
		return err
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

// stdin is the reader that `ctl codes SALE LANE USES -` takes codes from.
var stdin io.Reader = os.Stdin

// codeChunk is how many codes go in one request; the core takes up to 500.
const codeChunk = 500

// parseWhen reads an opening time: RFC 3339, or a delay from now such as
// 10m or 1h30m.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "+")); err == nil {
		return now.Add(d).Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule: %q is neither an RFC 3339 time (2026-12-11T10:00:00+01:00) nor a delay (10m)", s)
	}
	return t, nil
}

// readCodes returns the codes of args; "-" reads more from in, one per line,
// skipping blank lines.
func readCodes(args []string, in io.Reader) ([]string, error) {
	var codes []string
	for _, a := range args {
		if a != "-" {
			codes = append(codes, a)
			continue
		}
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				codes = append(codes, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read codes: %w", err)
		}
	}
	for _, c := range codes {
		if len(c) > 64 {
			return nil, fmt.Errorf("access code %.12q… is longer than 64 characters", c)
		}
	}
	return codes, nil
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
	case !st.OpensAt.IsZero():
		return "scheduled"
	}
	return "open"
}

func autoNote(c wire.Control) string {
	if c.AutoMax <= 0 {
		return ""
	}
	return fmt.Sprintf(", automatic between %d and %d", c.AutoMin, c.AutoMax)
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
rate              %d fans/min%s (%d admitted in the last minute)
cap               %d fans shopping at once (%d now)
proof of work     %s bits
fan identity      %s
queue             %d waiting, %d admitted, %d left, %d done, %d no-shows
seats             %d available, %d held, %d in checkout, %d sold
stream sequence   %d
`, st.Sale, st.Name, state(st), st.Control.RatePerMinute, autoNote(st.Control), st.AdmittedLastMinute, st.Control.Cap, st.Shopping,
		difficulty(st.Control), identityRule(st.Control), st.Waiting, st.Admitted, st.Left, st.Done, st.NoShows, st.Available, st.Held, st.InCheckout, st.Sold, st.LastSeq)
	if !st.OpensAt.IsZero() {
		fmt.Fprintf(w, "opens at          %s (in %s), %d fans in the pre-queue\nseed commitment   %s\n",
			st.OpensAt.Local().Format(time.RFC3339), time.Until(st.OpensAt).Round(time.Second), st.PreQueued, st.Commitment)
	}
	if st.Rejected > 0 {
		fmt.Fprintf(w, "joins turned away %d (unknown or used-up access code)\n", st.Rejected)
	}
	if len(st.Lanes) > 1 || (len(st.Lanes) == 1 && st.Lanes[0].Name != wire.DefaultLane) {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nLANE\tSHARE\tWAITING\tPRE-QUEUE\tCODES\tCODE USES")
		for _, l := range st.Lanes {
			fmt.Fprintf(tw, "%s\t%d%%\t%d\t%d\t%d\t%d\n", l.Name, l.Share, l.Waiting, l.PreQueued, l.Codes, l.CodeUses)
		}
		_ = tw.Flush()
	}
}
