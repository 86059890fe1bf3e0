package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
)

// errUnfair is returned when the verification finds a violation, so the
// command exits 1.
var errUnfair = errors.New("the stream does not verify")

func runVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("nats", envOr(getenv, "TAQUILLA_NATS_URL", "nats://127.0.0.1:4222"), "NATS server holding the queue streams (env TAQUILLA_NATS_URL)")
	stream := fs.String("stream", "", "read this stream instead of the sale's own (a copy, for example)")
	asJSON := fs.Bool("json", false, "print the audit as JSON")
	order := fs.Bool("order", false, "print every shuffled pre-queue order, one session per line")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the stream")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: taquilla verify [flags] SALE

Replays a sale's queue stream from its first message and checks, from the
stream alone, that every revealed shuffle seed hashes to the commitment
published before the opening, that the pre-queue was placed in the order of
HMAC-SHA256(seed, session), and that every admission took the fans first in
line in their lane. Exits 1 when anything does not verify.

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("verify takes one argument: SALE")
	}
	sale := fs.Arg(0)
	nc, err := nats.Connect(*url, nats.Name("taquilla-verify"))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	audit, err := natsq.Audit(ctx, js, sale, *stream)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(audit); err != nil {
			return err
		}
	} else {
		printAudit(stdout, sale, audit, *order)
	}
	if !audit.OK() {
		return errUnfair
	}
	return nil
}

func printAudit(w io.Writer, sale string, a queue.Audit, order bool) {
	fmt.Fprintf(w, "sale %s: %d scheduled opening(s), %d admit messages, %d fans admitted\n", sale, len(a.Rounds), a.AdmitMessages, a.AdmittedFans)
	for i, r := range a.Rounds {
		switch {
		case r.OpenSeq == 0:
			fmt.Fprintf(w, "round %d: scheduled at seq %d for %s, commitment %s, not opened yet\n", i+1, r.ScheduleSeq, r.OpensAt.Format(time.RFC3339), r.Commitment)
		case r.SeedOK:
			fmt.Fprintf(w, "round %d: seed revealed at seq %d hashes to the commitment of seq %d: ok; %d pre-queued fans placed by HMAC-SHA256(seed, session)\n", i+1, r.OpenSeq, r.ScheduleSeq, r.PreQueued)
		default:
			fmt.Fprintf(w, "round %d: seed revealed at seq %d does NOT hash to the commitment %s of seq %d\n", i+1, r.OpenSeq, r.Commitment, r.ScheduleSeq)
		}
		if order {
			for _, s := range r.Order {
				fmt.Fprintln(w, s)
			}
		}
	}
	if a.OutOfOrder == 0 {
		fmt.Fprintf(w, "admissions: every admitted fan was first in line in its lane: ok\n")
	} else {
		fmt.Fprintf(w, "admissions: %d fans admitted out of order\n", a.OutOfOrder)
	}
	if a.NotWaiting > 0 {
		fmt.Fprintf(w, "admit messages listed %d sessions that had left just before (not admitted)\n", a.NotWaiting)
	}
	for _, p := range a.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	if a.OK() {
		fmt.Fprintln(w, "verified")
	} else {
		fmt.Fprintln(w, "NOT VERIFIED")
	}
}
