// Package ratelimit limits requests per client address with token buckets
// from golang.org/x/time/rate. Each request takes a token from the bucket of
// its address (an IPv4 /32 or an IPv6 /64) and one from the bucket of its
// subnet (an IPv4 /24 or an IPv6 /48). The subnet bucket stops a client from
// getting around the address limit by rotating through its neighbours.
//
// The package does no I/O and reads no clock: callers pass now.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"time"
)

// Config sets the limits of a Table.
//
// Set IdleTTL longer than the time a drained bucket takes to refill
// (BurstAddr/PerAddr and BurstSubnet/PerSubnet seconds). Otherwise Sweep can
// evict a bucket that is still partly drained, and its next request starts
// with a full bucket.
type Config struct {
	PerAddr     float64       // tokens per second for one address (IPv4 /32, IPv6 /64)
	BurstAddr   int           // bucket size for one address
	PerSubnet   float64       // tokens per second for a subnet (IPv4 /24, IPv6 /48)
	BurstSubnet int           // bucket size for a subnet
	IdleTTL     time.Duration // Sweep evicts buckets untouched for this long
	MaxEntries  int           // maximum number of buckets, addresses and subnets together
}

// DefaultConfig returns limits for one fan per address: 2 requests per
// second with a burst of 10, and 50 per second with a burst of 200 for the
// subnet. It keeps at most 1,000,000 buckets, idle ones for 10 minutes. A
// bucket takes about 150 bytes of heap (measured on linux/amd64 with Go
// 1.26), so a full table takes about 150 MB.
func DefaultConfig() Config {
	return Config{
		PerAddr:     2,
		BurstAddr:   10,
		PerSubnet:   50,
		BurstSubnet: 200,
		IdleTTL:     10 * time.Minute,
		MaxEntries:  1_000_000,
	}
}

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var errs []error
	if !(c.PerAddr > 0) || math.IsInf(c.PerAddr, 1) {
		errs = append(errs, fmt.Errorf("ratelimit: PerAddr %v must be a positive, finite rate in tokens per second", c.PerAddr))
	}
	if c.BurstAddr < 1 {
		errs = append(errs, fmt.Errorf("ratelimit: BurstAddr %d must be at least 1", c.BurstAddr))
	}
	if !(c.PerSubnet > 0) || math.IsInf(c.PerSubnet, 1) {
		errs = append(errs, fmt.Errorf("ratelimit: PerSubnet %v must be a positive, finite rate in tokens per second", c.PerSubnet))
	}
	if c.BurstSubnet < 1 {
		errs = append(errs, fmt.Errorf("ratelimit: BurstSubnet %d must be at least 1", c.BurstSubnet))
	}
	if c.IdleTTL <= 0 {
		errs = append(errs, fmt.Errorf("ratelimit: IdleTTL %v must be positive", c.IdleTTL))
	}
	if c.MaxEntries < 2 {
		errs = append(errs, fmt.Errorf("ratelimit: MaxEntries %d must be at least 2, one address and its subnet", c.MaxEntries))
	}
	return errors.Join(errs...)
}

// maxShards is the number of map shards for a large table. Shards cut lock
// contention between requests from different subnets.
const maxShards = 64

// minShardEntries keeps each shard large enough that its eviction order is
// close to the table-wide least-recently-used order.
const minShardEntries = 64

// maxRetryAfter caps the retry delay that Allow returns, so a tiny rate
// cannot overflow time.Duration.
const maxRetryAfter = 24 * time.Hour

// Table holds the token buckets of client addresses and subnets. It is safe
// for concurrent use.
//
// The buckets are split into shards by a hash of the subnet, so an address
// and its subnet always share a shard, and one shard lock covers the whole
// of an Allow call. MaxEntries is split evenly between the shards, so a shard
// can evict its least recently used bucket while the table as a whole holds
// fewer than MaxEntries buckets.
type Table struct {
	cfg    Config
	seed   maphash.Seed
	shards []shard
}

// New returns an empty Table with the limits of cfg. It panics if
// cfg.Validate returns an error, so callers that load cfg from user input
// should call Validate first.
func New(cfg Config) *Table {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}

	n := maxShards
	for n > 1 && cfg.MaxEntries/n < minShardEntries {
		n /= 2
	}
	return newTable(cfg, n)
}

func newTable(cfg Config, shards int) *Table {
	t := &Table{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]shard, shards)}
	perShard := cfg.MaxEntries / shards
	for i := range t.shards {
		t.shards[i].init(perShard)
	}
	return t
}

// Allow takes one token from the bucket of addr and one from the bucket of
// its subnet at time now. It takes none unless both buckets have one.
//
// When it returns false, retryAfter is the time until both buckets hold a
// token again, rounded up to whole seconds for a Retry-After header, at
// least 1s and at most 24h. An IPv4-mapped address counts as IPv4, zones
// are ignored, and all invalid addresses share one pair of buckets.
func (t *Table) Allow(addr netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	addrKey, subnetKey := keysOf(addr)
	s := &t.shards[maphash.Comparable(t.seed, subnetKey.prefix)%uint64(len(t.shards))]

	s.mu.Lock()
	defer s.mu.Unlock()

	// Touch the subnet first so that inserting the address bucket cannot
	// evict it: a shard holds at least two buckets, and the subnet is then
	// the most recently used.
	nowNano := now.UnixNano()
	subnet := s.touch(subnetKey, nowNano, t.cfg.PerSubnet, t.cfg.BurstSubnet)
	address := s.touch(addrKey, nowNano, t.cfg.PerAddr, t.cfg.BurstAddr)

	subnetTokens := subnet.limiter.TokensAt(now)
	addrTokens := address.limiter.TokensAt(now)
	if subnetTokens >= 1 && addrTokens >= 1 {
		subnet.limiter.AllowN(now, 1)
		address.limiter.AllowN(now, 1)
		return true, 0
	}

	wait := max(secondsUntilToken(addrTokens, t.cfg.PerAddr), secondsUntilToken(subnetTokens, t.cfg.PerSubnet))
	return false, roundRetryAfter(wait)
}

// Sweep evicts the buckets last touched cfg.IdleTTL or longer before now and
// returns how many it evicted.
func (t *Table) Sweep(now time.Time) (evicted int) {
	cutoff := now.Add(-t.cfg.IdleTTL).UnixNano()
	for i := range t.shards {
		evicted += t.shards[i].evictIdle(cutoff)
	}
	return evicted
}

// Len returns the number of buckets in the table, addresses and subnets
// together.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// secondsUntilToken returns the time in seconds for a bucket holding tokens
// to reach one token at perSecond.
func secondsUntilToken(tokens, perSecond float64) float64 {
	if tokens >= 1 {
		return 0
	}
	return (1 - tokens) / perSecond
}

func roundRetryAfter(seconds float64) time.Duration {
	if seconds >= maxRetryAfter.Seconds() {
		return maxRetryAfter
	}
	return max(time.Duration(math.Ceil(seconds))*time.Second, time.Second)
}
