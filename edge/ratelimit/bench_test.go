package ratelimit_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taquilla/taquilla/edge/ratelimit"
)

// randomAddrs returns n IPv4 addresses spread over the whole address space,
// the same ones on every run.
func randomAddrs(n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		v := rng.Uint32()
		addrs[i] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return addrs
}

// runAllowParallel calls Allow from b.RunParallel goroutines. Each goroutine
// starts at its own place in addrs and moves its clock 1ms per call, so the
// mix of allowed and rejected calls is like a busy edge's.
func runAllowParallel(b *testing.B, table *ratelimit.Table, addrs []netip.Addr) {
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 7919
		now := t0
		for pb.Next() {
			table.Allow(addrs[i%len(addrs)], now)
			i++
			now = now.Add(time.Millisecond)
		}
	})
}

func BenchmarkTable_Allow(b *testing.B) {
	for _, n := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("addrs=%d", n), func(b *testing.B) {
			addrs := randomAddrs(n)
			table := ratelimit.New(ratelimit.DefaultConfig())
			for _, a := range addrs {
				table.Allow(a, t0) // insert outside the timed loop
			}
			runAllowParallel(b, table, addrs)
		})
	}
}

// BenchmarkTable_AllowShards compares lock contention with one shard and
// with the 64 shards that New uses for a large table.
func BenchmarkTable_AllowShards(b *testing.B) {
	addrs := randomAddrs(100_000)
	for _, shards := range []int{1, 64} {
		b.Run(fmt.Sprintf("addrs=100000/shards=%d", shards), func(b *testing.B) {
			table := ratelimit.NewWithShards(ratelimit.DefaultConfig(), shards)
			for _, a := range addrs {
				table.Allow(a, t0)
			}
			runAllowParallel(b, table, addrs)
		})
	}
}

func BenchmarkTable_Sweep(b *testing.B) {
	addrs := randomAddrs(100_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		table := ratelimit.New(ratelimit.DefaultConfig())
		for _, a := range addrs {
			table.Allow(a, t0)
		}
		b.StartTimer()
		table.Sweep(t0.Add(time.Hour))
	}
}
