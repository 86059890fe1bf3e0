package payments_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/payments/simserver"
)

// BenchmarkHTTP_Charge measures Charge through the HTTP client, with its
// breaker and an unlimited rate limiter. The simulator runs on loopback
// with zero latency, no rate limit and no webhooks, so the result is the
// cost of the client and the HTTP round trip, not of a real provider.
func BenchmarkHTTP_Charge(b *testing.B) {
	run := func(b *testing.B, parallel bool) {
		sim := mustSim(b, simserver.Config{})
		h := mustClient(b, sim, payments.HTTPConfig{})
		var n atomic.Int64
		charge := func() {
			key := fmt.Sprintf("pay-%d", n.Add(1))
			if _, err := h.Charge(b.Context(), key, 4500, testCard); err != nil {
				b.Errorf("Charge %s: %v", key, err)
			}
		}
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					charge()
				}
			})
		} else {
			for b.Loop() {
				charge()
			}
		}
		b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "charges/s")
		if captured, _ := sim.Totals(); captured != 4500*n.Load() {
			b.Errorf("captured %d cents for %d charges, want %d", captured, n.Load(), 4500*n.Load())
		}
	}
	b.Run("clients=1", func(b *testing.B) { run(b, false) })
	b.Run(fmt.Sprintf("clients=%d", runtime.GOMAXPROCS(0)), func(b *testing.B) { run(b, true) })
}
