package botfilter_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/taquilla/taquilla/edge/botfilter"
)

// BenchmarkPoW_Verify measures a successful Verify: decoding, the HMAC, one
// SHA-256 and the spent-set insert. The cost does not depend on the
// difficulty, so the challenges are issued at difficulty 0 and solved by "0".
// Solving thousands of them at a real difficulty would dominate the run.
func BenchmarkPoW_Verify(b *testing.B) {
	p := newTestPoW()
	const batch = 4096
	challenges := make([]string, 0, batch)
	b.ReportAllocs()

	i := 0
	for b.Loop() {
		if i == len(challenges) {
			b.StopTimer()
			challenges = challenges[:0]
			for range batch {
				challenges = append(challenges, p.Issue(testSale, testClient, 0, t0).Challenge)
			}
			i = 0
			b.StartTimer()
		}
		if err := p.Verify(testSale, testClient, challenges[i], "0", 0, t0.Add(time.Second)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkPoW_Issue(b *testing.B) {
	p := newTestPoW()
	b.ReportAllocs()
	for b.Loop() {
		p.Issue(testSale, testClient, 16, t0)
	}
}

// BenchmarkSolve solves a new challenge per iteration at difficulty 16 and
// reports the hashes computed per solve, about 2^16 on average.
func BenchmarkSolve(b *testing.B) {
	p := newTestPoW()
	const difficulty = 16
	b.Run("difficulty=16", func(b *testing.B) {
		hashes := 0
		for b.Loop() {
			b.StopTimer()
			ch := p.Issue(testSale, testClient, difficulty, t0).Challenge
			b.StartTimer()

			nonce, err := strconv.Atoi(botfilter.Solve(ch, difficulty))
			if err != nil {
				b.Fatal(err)
			}
			hashes += nonce + 1 // Solve tries 0, 1, …, nonce
		}
		b.ReportMetric(float64(hashes)/float64(b.N), "hashes/op")
	})
}

func BenchmarkCheckHeaders(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		botfilter.CheckHeaders(firefoxUA, languages, true)
	}
}
