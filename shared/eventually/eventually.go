// Package eventually waits in tests for a condition that other goroutines
// or processes make true, polling it instead of sleeping a guessed time.
// Only _test.go files import it.
package eventually

import (
	"testing"
	"time"
)

// Every is the polling interval.
const Every = 25 * time.Millisecond

// Check calls fn every Every until it returns nil, and fails the test with
// fn's last error when timeout passes first.
func Check(tb testing.TB, timeout time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(Every)
	}
}
