package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/taquilla/taquilla/bench/client"
	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/edge/botfilter"
)

// runPoW solves a proof-of-work challenge, for joining with curl.
func runPoW(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla pow", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: taquilla pow CHALLENGE DIFFICULTY\n\nPrints a nonce that solves the proof-of-work challenge returned by\nGET /api/v1/sales/{sale}/challenge.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("want a challenge and a difficulty")
	}
	difficulty, err := strconv.Atoi(fs.Arg(1))
	if err != nil || difficulty < 0 || difficulty > botfilter.MaxDifficulty {
		return fmt.Errorf("difficulty must be 0 to %d, got %q", botfilter.MaxDifficulty, fs.Arg(1))
	}
	nonce := botfilter.Solve(fs.Arg(0), difficulty)
	if nonce == "" {
		return errors.New("no nonce found")
	}
	fmt.Fprintln(stdout, nonce)
	return nil
}

// runWatch prints the status frames that the edge pushes to a ticket's
// WebSocket, one JSON-like line per frame.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the edge")
	limit := fs.Duration("for", 10*time.Minute, "stop after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: taquilla watch [-url URL] [-for DURATION] TICKET\n\nPrints the status frames the edge pushes over the WebSocket until the fan\nis admitted, leaves, the queue closes, or the time runs out.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want a ticket")
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	sock, err := client.New(*base, nil).Dial(ctx, strings.TrimSpace(fs.Arg(0)))
	if err != nil {
		return err
	}
	defer sock.Close()
	deadline, _ := ctx.Deadline()
	for {
		st, err := sock.Next(deadline)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		line := fmt.Sprintf("state=%s position=%d ahead=%d wait=%d-%ds paused=%t", st.State, st.Position, st.Ahead, st.WaitMinSeconds, st.WaitMaxSeconds, st.Paused)
		if st.Closed != "" {
			line += " closed=" + st.Closed
		}
		if st.Admission != nil {
			line += " admission=" + st.Admission.Token
		}
		fmt.Fprintln(stdout, line)
		switch st.State {
		case "admitted", "left", "done", "closed":
			return nil
		}
	}
}

// runCatalog checks a catalog file and prints its summary.
func runCatalog(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: taquilla catalog check FILE\n\nValidates a tour catalog (YAML or JSON; lux and smoke name the built-in ones)\nand prints its venues, shows, places and price tiers. Every problem is\nreported with its file, line and column.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 2 || fs.Arg(0) != "check" {
		fs.Usage()
		return errors.New("missing catalog file: run taquilla catalog check FILE")
	}
	summary, err := catalog.Check(fs.Arg(1))
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, summary)
	return nil
}
