package scenario

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/taquilla/taquilla/bench/client"
)

// Config describes a scenario run.
type Config struct {
	// URL is the edge's base URL.
	URL  string
	Sale string
	Fans int
	// MinTickets and MaxTickets bound the quantity each fan buys.
	MinTickets, MaxTickets int
	// ArrivalSpread spreads the fans' arrivals over this long.
	ArrivalSpread time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
	Seed    uint64
}

// StockFunc returns the number of places of the sale still unsold and the
// total.
type StockFunc func(ctx context.Context) (unsold, total int, err error)

// Run simulates the fans and returns what each was told. It stops when
// every fan is done, when every place is sold (fans still waiting are told
// sold out by the queue and leave), or at the timeout.
func Run(ctx context.Context, cfg Config, stock StockFunc, progress io.Writer) ([]*Told, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	transport := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: time.Minute}

	soldOut := make(chan struct{})
	var closeOnce sync.Once
	told := make([]*Told, cfg.Fans)
	var finished atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 99))
	for i := range cfg.Fans {
		told[i] = &Told{Key: fmt.Sprintf("fan-%06d-%d", i, cfg.Seed)}
		c := client.New(cfg.URL, hc)
		// 198.18.0.0/15 is reserved for benchmarks; these addresses only
		// appear in a header and no packet is sent to them. Fans spread
		// over 256 networks of /24, a dozen or so in each for 3,000 fans.
		c.ForwardedFor = fmt.Sprintf("198.18.%d.%d", i%256, 1+(i/256)%250)
		f := &fan{c: c, sale: cfg.Sale, told: told[i], soldOut: soldOut,
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
			qty: cfg.MinTickets + rng.IntN(cfg.MaxTickets-cfg.MinTickets+1)}
		delay := time.Duration(0)
		if cfg.ArrivalSpread > 0 {
			delay = time.Duration(rng.Int64N(int64(cfg.ArrivalSpread)))
		}
		wg.Go(func() {
			defer finished.Add(1)
			sleep(ctx, delay)
			if ctx.Err() == nil {
				f.run(ctx)
			}
		})
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var stockErr error
	for {
		select {
		case <-done:
			return told, time.Since(start), stockErr
		case <-ctx.Done():
			<-done
			return told, time.Since(start), fmt.Errorf("scenario timed out after %v", cfg.Timeout)
		case <-tick.C:
			unsold, total, err := stock(ctx)
			if err != nil {
				stockErr = err
				continue
			}
			if unsold == 0 {
				closeOnce.Do(func() { close(soldOut) })
			}
			fmt.Fprintf(progress, "progress t=%.0fs fans_done=%d/%d sold=%d/%d\n",
				time.Since(start).Seconds(), finished.Load(), cfg.Fans, total-unsold, total)
		}
	}
}
