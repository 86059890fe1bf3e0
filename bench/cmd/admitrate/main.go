// Command admitrate measures the admission controller alone: it starts an
// embedded NATS server with JetStream, fills one sale's queue stream with
// joins, runs one controller at a set rate and cap, and reads the stream
// back to report the admissions per second and the most fans admitted in
// any 60-second window against the rate (the overshoot; 0 means the rate
// held). No database is involved: the controller decides from the queue
// alone.
//
// It prints one line "RESULT key=value ...".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/admission"
	"github.com/taquilla/taquilla/core/control"
	"github.com/taquilla/taquilla/shared/natsembed"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

const sale = "admit-bench"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "admitrate:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admitrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fans := fs.Int("fans", 50_000, "fans in the queue before the controller starts")
	rate := fs.Int("rate", control.MaxRate, "admission rate in fans per minute; the default is the control plane's maximum, so the controller runs unthrottled")
	capacity := fs.Int("cap", control.MaxCap, "maximum fans shopping at once")
	tick := fs.Duration("tick", admission.DefaultConfig().Tick, "controller decision interval")
	limit := fs.Duration("duration", 3*time.Minute, "stop after this long even if fans still wait")
	syncAlways := fs.Bool("sync", true, "sync every JetStream message to disk before acknowledging it, as taquilla run does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fans < 1 || *rate < 1 || *capacity < 1 || *limit <= 0 {
		return errors.New("fans, rate, cap and duration must be positive")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	dir, err := os.MkdirTemp("", "taquilla-admitrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir, SyncAlways: *syncAlways, ServerName: "admitrate"}, log)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := natsq.EnsureStream(ctx, js, sale, natsq.StreamOptions{}); err != nil {
		return err
	}
	settings := wire.Control{RatePerMinute: *rate, Cap: *capacity, ShoppingSeconds: 3600}
	if _, err := natsq.Publish(ctx, js, sale, wire.QueueMsg{Kind: wire.KindControl, Control: &settings, By: "admitrate"}, ""); err != nil {
		return err
	}

	fmt.Fprintf(stderr, "publishing %d joins…\n", *fans)
	if err := publishJoins(ctx, js, *fans); err != nil {
		return err
	}
	f := natsq.NewFollower(js, sale, settings, log)
	if err := f.Start(ctx); err != nil {
		return err
	}
	defer f.Close()
	cfg := admission.DefaultConfig()
	cfg.Tick = *tick
	ctl := admission.New(js, f, nil, cfg, log)

	fmt.Fprintf(stderr, "admitting at %d fans/min, cap %d…\n", *rate, *capacity)
	start := time.Now()
	ctl.Start(ctx)
	deadline := time.After(*limit)
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	admitted := 0
	for admitted < *fans {
		select {
		case <-ctx.Done():
			ctl.Close()
			return ctx.Err()
		case <-deadline:
			admitted = *fans // stop waiting; the report counts what happened
		case <-progress.C:
			var st queue.Stats
			f.Do(func(q *queue.State) { st = q.Stats(time.Now()) })
			fmt.Fprintf(stderr, "%5.0fs admitted %d, waiting %d\n", time.Since(start).Seconds(), st.Admitted, st.Waiting)
		case <-time.After(100 * time.Millisecond):
			f.Do(func(q *queue.State) { admitted = q.Stats(time.Now()).Admitted })
		}
	}
	ctl.Close()

	rep, err := analyse(ctx, js)
	if err != nil {
		return err
	}
	perSec := 0.0
	if span := rep.last.Sub(rep.first).Seconds(); span > 0 {
		perSec = float64(rep.fans-rep.firstCount) / span
	}
	fmt.Fprintf(stdout, "RESULT fans=%d rate_per_min=%d cap=%d tick_ms=%d sync=%t admitted=%d admit_messages=%d admitted_per_s=%.0f max_60s_window=%d overshoot=%d max_1s=%d duration_s=%.1f\n",
		*fans, *rate, *capacity, tick.Milliseconds(), *syncAlways, rep.fans, rep.messages, perSec, rep.maxWindow, max(rep.maxWindow-*rate, 0), rep.maxSecond, time.Since(start).Seconds())
	return nil
}

// publishJoins publishes n joins asynchronously, at most 1,024 in flight.
func publishJoins(ctx context.Context, js jetstream.JetStream, n int) error {
	subject := wire.QueueSubject(sale, wire.KindJoin)
	for i := 0; i < n; i++ {
		body, _ := json.Marshal(wire.QueueMsg{V: wire.Version, Kind: wire.KindJoin, Session: fmt.Sprintf("s%07d", i), Lane: wire.DefaultLane})
		if _, err := js.PublishAsync(subject, body); err != nil {
			return fmt.Errorf("publish join %d: %w", i, err)
		}
		if i%1024 == 1023 {
			select {
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type report struct {
	fans, messages, firstCount int
	first, last                time.Time
	maxWindow, maxSecond       int
}

// analyse reads every admit message back from the stream and finds the
// most fans admitted in any 60-second and any 1-second window ending at an
// admit message, by the stream's timestamps: the clock the controller's
// rate window uses.
func analyse(ctx context.Context, js jetstream.JetStream) (report, error) {
	var rep report
	cons, err := js.OrderedConsumer(ctx, wire.StreamName(sale), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{wire.QueueSubject(sale, wire.KindAdmit)},
	})
	if err != nil {
		return rep, err
	}
	type admit struct {
		at time.Time
		n  int
	}
	var admits []admit
	for {
		batch, err := cons.FetchNoWait(4096)
		if err != nil {
			return rep, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return rep, err
			}
			var m wire.QueueMsg
			if err := json.Unmarshal(msg.Data(), &m); err != nil {
				return rep, err
			}
			admits = append(admits, admit{meta.Timestamp, len(m.Sessions)})
		}
		if got == 0 {
			break
		}
	}
	if len(admits) == 0 {
		return rep, errors.New("no admit messages on the stream")
	}
	rep.messages = len(admits)
	rep.first, rep.last, rep.firstCount = admits[0].at, admits[len(admits)-1].at, admits[0].n
	inMinute, inSecond := 0, 0
	lo, loSec := 0, 0
	for _, a := range admits {
		rep.fans += a.n
		inMinute += a.n
		inSecond += a.n
		for !admits[lo].at.After(a.at.Add(-time.Minute)) {
			inMinute -= admits[lo].n
			lo++
		}
		for !admits[loSec].at.After(a.at.Add(-time.Second)) {
			inSecond -= admits[loSec].n
			loSec++
		}
		rep.maxWindow = max(rep.maxWindow, inMinute)
		rep.maxSecond = max(rep.maxSecond, inSecond)
	}
	return rep, nil
}
