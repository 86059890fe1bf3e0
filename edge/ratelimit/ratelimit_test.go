package ratelimit_test

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taquilla/taquilla/edge/ratelimit"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// testConfig returns a config whose subnet limit never trips unless a test
// lowers it.
func testConfig() ratelimit.Config {
	return ratelimit.Config{
		PerAddr:     2,
		BurstAddr:   3,
		PerSubnet:   1000,
		BurstSubnet: 1000,
		IdleTTL:     10 * time.Minute,
		MaxEntries:  1000,
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// mustAllow fails the test unless Allow accepts the request.
func mustAllow(tb testing.TB, table *ratelimit.Table, a netip.Addr, now time.Time) {
	tb.Helper()
	if ok, retry := table.Allow(a, now); !ok {
		tb.Fatalf("Allow(%v, %v) = false, %v, want true", a, now.Sub(t0), retry)
	}
}

// mustReject fails the test unless Allow rejects the request, and returns its
// retry delay.
func mustReject(tb testing.TB, table *ratelimit.Table, a netip.Addr, now time.Time) time.Duration {
	tb.Helper()
	ok, retry := table.Allow(a, now)
	if ok {
		tb.Fatalf("Allow(%v, %v) = true, want false", a, now.Sub(t0))
	}
	return retry
}

func TestTable_Allow_burstThenRefill(t *testing.T) {
	table := ratelimit.New(testConfig())
	a := addr("192.0.2.1")

	for range 3 {
		mustAllow(t, table, a, t0)
	}
	// At 2 tokens per second the next token is 500ms away, rounded up to 1s.
	if retry := mustReject(t, table, a, t0); retry != time.Second {
		t.Errorf("retryAfter = %v, want 1s", retry)
	}

	mustAllow(t, table, a, t0.Add(500*time.Millisecond))
	mustReject(t, table, a, t0.Add(500*time.Millisecond))

	// Two seconds refill four tokens, capped at the burst of three.
	later := t0.Add(2500 * time.Millisecond)
	for range 3 {
		mustAllow(t, table, a, later)
	}
	mustReject(t, table, a, later)
}

func TestTable_Allow_retryAfter(t *testing.T) {
	tests := []struct {
		name    string
		perAddr float64
		elapsed time.Duration // after the only token was taken
		want    time.Duration
	}{
		{"ten_seconds_per_token", 0.1, 0, 10 * time.Second},
		{"partly_refilled_rounds_up", 0.1, 3500 * time.Millisecond, 7 * time.Second},
		{"almost_refilled_is_one_second", 0.1, 9990 * time.Millisecond, time.Second},
		{"fast_rate_is_one_second", 100, 0, time.Second},
		{"tiny_rate_capped", 1e-9, 0, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.PerAddr, cfg.BurstAddr = tt.perAddr, 1
			table := ratelimit.New(cfg)
			a := addr("192.0.2.1")

			mustAllow(t, table, a, t0)
			if got := mustReject(t, table, a, t0.Add(tt.elapsed)); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTable_Allow_subnetLimit(t *testing.T) {
	cfg := testConfig()
	cfg.PerSubnet, cfg.BurstSubnet = 1, 5
	table := ratelimit.New(cfg)

	// Five different /32s in one /24 drain the subnet bucket.
	for i := 1; i <= 5; i++ {
		mustAllow(t, table, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), t0)
	}
	if retry := mustReject(t, table, addr("198.51.100.77"), t0); retry != time.Second {
		t.Errorf("retryAfter = %v, want 1s", retry)
	}

	// The neighbouring /24 has its own bucket.
	mustAllow(t, table, addr("198.51.101.1"), t0)

	// One second refills one subnet token.
	mustAllow(t, table, addr("198.51.100.77"), t0.Add(time.Second))
	mustReject(t, table, addr("198.51.100.78"), t0.Add(time.Second))
}

func TestTable_Allow_subnetRejectKeepsAddressToken(t *testing.T) {
	cfg := testConfig()
	cfg.PerAddr, cfg.BurstAddr = 0.001, 2 // the address bucket barely refills
	cfg.PerSubnet, cfg.BurstSubnet = 1, 2
	table := ratelimit.New(cfg)
	a, b := addr("203.0.113.1"), addr("203.0.113.2")

	mustAllow(t, table, a, t0) // a: 1 left; subnet: 1 left
	mustAllow(t, table, b, t0) // subnet: 0 left
	mustReject(t, table, a, t0)

	// The subnet refills one token. The rejected call must not have taken
	// a's last token.
	mustAllow(t, table, a, t0.Add(time.Second))
}

func TestTable_Allow_addressRejectKeepsSubnetToken(t *testing.T) {
	cfg := testConfig()
	cfg.PerAddr, cfg.BurstAddr = 0.001, 1
	cfg.PerSubnet, cfg.BurstSubnet = 0.001, 2
	table := ratelimit.New(cfg)
	a, b, c := addr("203.0.113.1"), addr("203.0.113.2"), addr("203.0.113.3")

	mustAllow(t, table, a, t0) // subnet: 1 left
	for range 5 {
		mustReject(t, table, a, t0)
	}
	mustAllow(t, table, b, t0) // the rejected calls left the subnet's token
	mustReject(t, table, c, t0)
}

func TestTable_Allow_ipv6Grouping(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 2
	cfg.PerSubnet, cfg.BurstSubnet = 0.001, 3
	table := ratelimit.New(cfg)

	// Two addresses in one /64 share the address bucket.
	mustAllow(t, table, addr("2001:db8:1:2::1"), t0)
	mustAllow(t, table, addr("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0)
	mustReject(t, table, addr("2001:db8:1:2::9"), t0)

	// Another /64 in the same /48 has its own address bucket but shares the
	// subnet bucket, which holds one token more.
	mustAllow(t, table, addr("2001:db8:1:3::1"), t0)
	mustReject(t, table, addr("2001:db8:1:4::1"), t0)

	// Another /48 is untouched.
	mustAllow(t, table, addr("2001:db8:2:2::1"), t0)

	// Buckets: /64s 1:2, 1:3, 1:4 and 2:2; /48s 1 and 2.
	if got := table.Len(); got != 6 {
		t.Errorf("Len() = %d, want 6", got)
	}
}

func TestTable_Allow_addressForms(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 1
	tests := []struct {
		name        string
		first, same string
	}{
		{"ipv4_mapped", "192.0.2.1", "::ffff:192.0.2.1"},
		{"ipv6_zone", "fe80::1", "fe80::1%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := ratelimit.New(cfg)
			mustAllow(t, table, addr(tt.first), t0)
			mustReject(t, table, addr(tt.same), t0)
			if got := table.Len(); got != 2 {
				t.Errorf("Len() = %d, want 2", got)
			}
		})
	}
}

func TestTable_Allow_ipv4AndIPv6Apart(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 1
	table := ratelimit.New(cfg)

	// ::c000:201 has the same last four bytes as 192.0.2.1.
	mustAllow(t, table, addr("192.0.2.1"), t0)
	mustAllow(t, table, addr("::c000:201"), t0)
}

func TestTable_Allow_invalidAddressesShareBucket(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 2
	table := ratelimit.New(cfg)

	mustAllow(t, table, netip.Addr{}, t0)
	mustAllow(t, table, netip.Addr{}, t0)
	mustReject(t, table, netip.Addr{}, t0)
	mustAllow(t, table, addr("0.0.0.0"), t0)
}

func TestTable_Sweep(t *testing.T) {
	table := ratelimit.New(testConfig()) // IdleTTL 10m
	old, recent := addr("192.0.2.1"), addr("198.51.100.1")

	mustAllow(t, table, old, t0)
	mustAllow(t, table, recent, t0.Add(5*time.Minute))
	if got := table.Len(); got != 4 {
		t.Fatalf("Len() = %d, want 4", got)
	}

	if got := table.Sweep(t0.Add(10*time.Minute - time.Nanosecond)); got != 0 {
		t.Errorf("Sweep before the TTL evicted %d, want 0", got)
	}
	if got := table.Sweep(t0.Add(10 * time.Minute)); got != 2 {
		t.Errorf("Sweep at the TTL evicted %d, want 2", got)
	}
	if got := table.Len(); got != 2 {
		t.Errorf("Len() after Sweep = %d, want 2", got)
	}
	if got := table.Sweep(t0.Add(time.Hour)); got != 2 {
		t.Errorf("second Sweep evicted %d, want 2", got)
	}
	if got := table.Len(); got != 0 {
		t.Errorf("Len() after second Sweep = %d, want 0", got)
	}
}

func TestTable_Sweep_rejectedRequestCountsAsUse(t *testing.T) {
	cfg := testConfig()
	cfg.PerAddr, cfg.BurstAddr = 0.001, 1
	table := ratelimit.New(cfg)
	a := addr("192.0.2.1")

	mustAllow(t, table, a, t0)
	mustReject(t, table, a, t0.Add(8*time.Minute))
	if got := table.Sweep(t0.Add(12 * time.Minute)); got != 0 {
		t.Errorf("Sweep evicted %d buckets touched 4m ago, want 0", got)
	}
}

func TestTable_Allow_maxEntries(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 1
	cfg.MaxEntries = 4 // two addresses in two subnets
	table := ratelimit.New(cfg)
	a, b, c := addr("192.0.2.1"), addr("198.51.100.1"), addr("203.0.113.1")

	mustAllow(t, table, a, t0)
	mustAllow(t, table, b, t0.Add(time.Millisecond))
	mustReject(t, table, a, t0.Add(2*time.Millisecond)) // a is now more recent than b

	// c needs two buckets, so the least recently used pair, b's, goes.
	mustAllow(t, table, c, t0.Add(3*time.Millisecond))
	if got := table.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
	mustReject(t, table, a, t0.Add(4*time.Millisecond)) // a kept its empty bucket

	// b was evicted, so it starts again with a full bucket.
	mustAllow(t, table, b, t0.Add(5*time.Millisecond))
	if got := table.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
}

func TestTable_Allow_maxEntriesManyShards(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEntries = 64 * 64 // enough for 64 shards
	cfg.PerSubnet, cfg.BurstSubnet = 1000, 1000
	table := ratelimit.New(cfg)

	for i := range 20_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		table.Allow(a, t0.Add(time.Duration(i)*time.Millisecond))
		if got := table.Len(); got > cfg.MaxEntries {
			t.Fatalf("Len() = %d after %d addresses, want at most %d", got, i+1, cfg.MaxEntries)
		}
	}
}

func TestTable_concurrent(t *testing.T) {
	cfg := testConfig()
	cfg.BurstAddr = 50
	cfg.MaxEntries = 512
	table := ratelimit.New(cfg)
	shared := addr("192.0.2.1")

	const workers, calls = 8, 200
	allowed := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				// All workers share one address at a fixed time, so exactly
				// BurstAddr calls succeed between them.
				if ok, _ := table.Allow(shared, t0); ok {
					allowed[w]++
				}
				// Other addresses churn the table and force evictions.
				other := netip.AddrFrom4([4]byte{10, byte(w), byte(i), 1})
				table.Allow(other, t0.Add(time.Duration(i)*time.Millisecond))
				if i%50 == 0 {
					table.Sweep(t0.Add(time.Duration(i) * time.Millisecond))
					table.Len()
				}
			}
		})
	}
	wg.Wait()

	total := 0
	for _, n := range allowed {
		total += n
	}
	if total != cfg.BurstAddr {
		t.Errorf("%d workers were allowed %d calls on one address, want %d", workers, total, cfg.BurstAddr)
	}
	if got := table.Len(); got > cfg.MaxEntries {
		t.Errorf("Len() = %d, want at most %d", got, cfg.MaxEntries)
	}
}

func TestTable_Allow_noAllocs(t *testing.T) {
	table := ratelimit.New(ratelimit.DefaultConfig())
	a := addr("2001:db8::1")
	mustAllow(t, table, a, t0)

	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond) // both allowed and rejected calls happen
		table.Allow(a, now)
	})
	if allocs != 0 {
		t.Errorf("Allow on an existing bucket allocated %v times per call, want 0", allocs)
	}
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*ratelimit.Config)
		wantErr string // "" for a valid config
	}{
		{"default", func(*ratelimit.Config) {}, ""},
		{"zero_per_addr", func(c *ratelimit.Config) { c.PerAddr = 0 }, "PerAddr 0"},
		{"infinite_per_subnet", func(c *ratelimit.Config) { c.PerSubnet = math.Inf(1) }, "PerSubnet +Inf"},
		{"zero_burst_addr", func(c *ratelimit.Config) { c.BurstAddr = 0 }, "BurstAddr 0"},
		{"negative_burst_subnet", func(c *ratelimit.Config) { c.BurstSubnet = -1 }, "BurstSubnet -1"},
		{"zero_idle_ttl", func(c *ratelimit.Config) { c.IdleTTL = 0 }, "IdleTTL 0s"},
		{"one_max_entry", func(c *ratelimit.Config) { c.MaxEntries = 1 }, "MaxEntries 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ratelimit.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfig_Validate_reportsAll(t *testing.T) {
	err := ratelimit.Config{}.Validate()
	if err == nil {
		t.Fatal("Validate() of the zero Config = nil, want an error")
	}
	for _, field := range []string{"PerAddr", "BurstAddr", "PerSubnet", "BurstSubnet", "IdleTTL", "MaxEntries"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %q, want it to name %s", err, field)
		}
	}
}

func TestNew_invalidConfigPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(Config{}) did not panic")
		}
	}()
	ratelimit.New(ratelimit.Config{})
}
