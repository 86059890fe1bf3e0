// Command sellout measures how fast the core sells a whole tour: it starts
// the system with the LUX Tour catalog (142,000 places in 8 shows) through
// the same launcher as `taquilla run`, with admission unthrottled, and
// drives the core the way edges do: joins published to each show's queue
// stream, and holds, checkouts and payments as NATS requests to the
// inventory service with admission tokens. HTTP is left out on purpose; the
// load generator covers it.
//
// It prints progress, then one line "RESULT key=value ...", and exits
// non-zero when a place was sold twice or places stayed unsold.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/deploy/launch"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sellout:", err)
		}
		os.Exit(1)
	}
}

type config struct {
	catalog string
	buyers  int
	timeout time.Duration
	sync    bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sellout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.catalog, "catalog", "lux", "catalog to sell: lux, smoke or a file")
	fs.IntVar(&cfg.buyers, "buyers", 32, "concurrent buyers")
	fs.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "stop after this long")
	fs.BoolVar(&cfg.sync, "nats-sync-always", true, "sync every JetStream message to disk before acknowledging it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.buyers < 1 || cfg.buyers > 512 {
		return fmt.Errorf("-buyers must be 1 to 512, got %d", cfg.buyers)
	}

	dir, err := os.MkdirTemp("", "taquilla-sellout-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	lcfg := launch.DefaultConfig()
	lcfg.DataDir, lcfg.HTTPAddr = dir, "127.0.0.1:0"
	lcfg.NATSPort, lcfg.NATSMonitorPort, lcfg.PostgresPort = -1, 0, 0
	lcfg.NATSSyncAlways = cfg.sync
	lcfg.Catalog = cfg.catalog
	lcfg.Payments.Latency = 0
	lcfg.PaymentProvider = "inprocess" // the core is measured, not the provider
	// Unthrottled admission: the rate and cap are far above what the core
	// can sell, so the store is the bottleneck being measured.
	lcfg.Core.Initial = wire.Control{RatePerMinute: 10_000_000, Cap: 1_000_000, ShoppingSeconds: 3600}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Fprintf(stderr, "loading %s into a fresh system in %s\n", cfg.catalog, dir)
	sys, err := launch.Start(ctx, lcfg, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sys.Close(sctx)
	}()
	return sellout(ctx, sys, cfg, stdout, stderr)
}

type counters struct {
	sales, seats, failures atomic.Int64
	firstErr               atomic.Value
	// served counts admitted fans whose turn at the store ended.
	served atomic.Int64
}

func sellout(ctx context.Context, sys *launch.System, cfg config, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	nc, err := nats.Connect(sys.NATSURL, nats.Name("sellout"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	sales, err := sys.DB.FindSales(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, s := range sales {
		total += s.Capacity
	}

	// Follow every queue; admitted fans go to the buyers.
	admitted := make(chan [2]string, 100_000)
	for _, s := range sales {
		f := natsq.NewFollower(js, s.ID, wire.Control{}, slog.New(slog.DiscardHandler))
		f.OnApply = func(_ uint64, _ wire.QueueMsg, res queue.Result) {
			for _, session := range res.Admitted {
				select {
				case admitted <- [2]string{s.ID, session}:
				case <-ctx.Done():
					return // the run is over; nobody buys any more
				}
			}
		}
		if err := f.Start(ctx); err != nil {
			return err
		}
		defer f.Close()
	}

	var c counters
	_, retries0 := sys.DB.TxStats()
	collisions0 := sys.DB.Collisions()
	start := time.Now()
	var wg sync.WaitGroup

	// Fans join each show's queue, a few hundred ahead of the buyers.
	soldOut := make([]atomic.Bool, len(sales))
	for i, s := range sales {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil && !soldOut[i].Load(); n++ {
				// Stay a bounded distance ahead of the buyers, per show.
				if n-int(c.served.Load())/len(sales) > 2000 {
					time.Sleep(10 * time.Millisecond)
					n--
					continue
				}
				if _, err := natsq.Join(ctx, js, s.ID, fmt.Sprintf("f-%s-%d", s.ID, n), wire.DefaultLane, "bench"); err != nil {
					return
				}
			}
		})
	}
	for w := range cfg.buyers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				var fan [2]string
				select {
				case fan = <-admitted:
				case <-ctx.Done():
					return
				}
				buy(ctx, nc, js, sys.Signer, fan[0], fan[1], rng, &c)
				c.served.Add(1)
			}
		})
	}

	// Watch the stock until every place is sold.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var sold int
	for sold < total {
		select {
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return fmt.Errorf("timed out after %v with %d of %d places sold", cfg.timeout, sold, total)
		case <-tick.C:
		}
		sold = 0
		var held int
		for i, s := range sales {
			st, err := sys.DB.FindStock(ctx, s.ID)
			if err != nil {
				return err
			}
			sold += st.Sold
			held += st.Held + st.Checkout
			if st.Available == 0 {
				soldOut[i].Store(true)
			}
		}
		el := time.Since(start).Seconds()
		fmt.Fprintf(stderr, "progress t=%.0fs sold=%d/%d in_carts=%d seats_per_s=%.0f served=%d failures=%d\n",
			el, sold, total, held, float64(sold)/el, c.served.Load(), c.failures.Load())
		if e, ok := c.firstErr.Load().(string); ok {
			fmt.Fprintln(stderr, "first buyer error:", e)
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()

	_, retries := sys.DB.TxStats()
	var twice int
	err = sys.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM seats s LEFT JOIN orders o ON o.hold_id = s.hold_id AND o.state = 'PAID'
		WHERE s.state = 'SOLD' AND o.id IS NULL`).Scan(&twice)
	if err != nil {
		return err
	}
	n := float64(max(c.sales.Load(), 1))
	fmt.Fprintf(stdout, "RESULT places=%d sold=%d orders=%d duration_s=%.1f seats_per_s=%.0f sales_per_s=%.0f retries_per_sale=%.3f collisions_per_sale=%.3f sold_without_order=%d buyers=%d nats_sync_always=%t\n",
		total, sold, c.sales.Load(), elapsed.Seconds(), float64(sold)/elapsed.Seconds(), float64(c.sales.Load())/elapsed.Seconds(),
		float64(retries-retries0)/n, float64(sys.DB.Collisions()-collisions0)/n, twice, cfg.buyers, cfg.sync)
	if twice != 0 || sold != total {
		return errors.New("places sold without an order, or places left unsold")
	}
	return nil
}

// buy runs one admitted fan: 1 to 4 places, best available in a random
// section with room, checkout and payment; a fan who finds nothing leaves.
func buy(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, signer *token.Signer, sale, session string, rng *rand.Rand, c *counters) {
	now := time.Now()
	tok := signer.Sign(token.NewAdmission(sale, session, now, now.Add(time.Hour)))
	var m waitroom.SeatMap
	if err := call(ctx, nc, wire.SubjectSeatMap, wire.StoreRequest{Token: tok, Sale: sale}, &m); err != nil {
		c.fail(fmt.Errorf("seat map: %w", err))
		return
	}
	qty := 1 + rng.IntN(4)
	var fits []string
	for _, s := range m.Sections {
		if s.Available >= qty {
			fits = append(fits, s.ID)
		}
	}
	rng.Shuffle(len(fits), func(i, j int) { fits[i], fits[j] = fits[j], fits[i] })
	for _, section := range fits {
		var h waitroom.Hold
		err := call(ctx, nc, wire.SubjectHold, wire.StoreRequest{Token: tok, IdempotencyKey: "h-" + section, Section: section, Quantity: qty}, &h)
		if code := waitroom.ErrorCode(err); code == waitroom.ESOLDOUT || code == waitroom.ECONFLICT {
			continue
		}
		if err != nil {
			c.fail(fmt.Errorf("hold: %w", err))
			return
		}
		if err := call(ctx, nc, wire.SubjectCheckout, wire.StoreRequest{Token: tok, HoldID: h.ID}, &h); err != nil {
			c.fail(fmt.Errorf("checkout: %w", err))
			return
		}
		var res waitroom.PayResult
		// The store may answer "busy, retry": a retry with the same hold
		// is safe and never charges twice.
		err = call(ctx, nc, wire.SubjectPay, wire.StoreRequest{Token: tok, HoldID: h.ID, Card: "4242424242424242"}, &res)
		for try := 0; waitroom.ErrorCode(err) == waitroom.EUNAVAILABLE && try < 10 && ctx.Err() == nil; try++ {
			time.Sleep(100 * time.Millisecond)
			err = call(ctx, nc, wire.SubjectPay, wire.StoreRequest{Token: tok, HoldID: h.ID, Card: "4242424242424242"}, &res)
		}
		if err != nil || res.Order == nil {
			c.fail(fmt.Errorf("pay: %w (declined %q)", err, res.Declined))
			return
		}
		c.sales.Add(1)
		c.seats.Add(int64(len(res.Order.Seats)))
		return
	}
	// Nothing of that size left: leaving frees the admission slot.
	_, _ = natsq.Publish(ctx, js, sale, wire.QueueMsg{Kind: wire.KindLeave, Session: session}, "leave:"+session)
}

// fail counts a buyer who met an error and keeps the first one for the
// report.
func (c *counters) fail(err error) {
	c.failures.Add(1)
	c.firstErr.CompareAndSwap(nil, err.Error())
}

func call(ctx context.Context, nc *nats.Conn, subject string, req wire.StoreRequest, out any) error {
	req.V = wire.Version
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return err
	}
	if err := reply.Err(); err != nil {
		return err
	}
	return json.Unmarshal(reply.Data, out)
}
