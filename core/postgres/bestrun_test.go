package postgres

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBestRun_PrefixChoosesAlike checks the shortcut of pickSeated: when
// the complete rows of the first free seats hold at least spread runs,
// choosing from them gives the same seats as choosing from the whole
// section, for random sections with random holes.
func TestBestRun_PrefixChoosesAlike(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checked := 0
	for trial := range 2000 {
		var free []candidate
		for row := 1; row <= 18; row++ {
			for n := 1; n <= 25; n++ {
				if rng.IntN(100) < 40+row { // fuller rows near the stage
					free = append(free, candidate{id: fmt.Sprintf("%d-%d", row, n), row: row, number: n})
				}
			}
		}
		quantity, spread := 1+rng.IntN(4), 4<<(2*rng.IntN(3))
		limit := 20 + rng.IntN(200)
		if limit >= len(free) {
			continue
		}
		prefix := withoutLastRow(free[:limit])
		if countRuns(prefix, quantity) < spread {
			continue
		}
		seed := uint64(trial)
		want := bestRun(free, quantity, spread, rand.New(rand.NewPCG(seed, 9)))
		got := bestRun(prefix, quantity, spread, rand.New(rand.NewPCG(seed, 9)))
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (quantity %d, spread %d, limit %d): prefix chose %v, whole section %v", trial, quantity, spread, limit, got, want)
		}
		checked++
	}
	if checked < 100 {
		t.Fatalf("only %d trials used the shortcut", checked)
	}
}

func TestCountRuns(t *testing.T) {
	row := func(r int, numbers ...int) []candidate {
		var out []candidate
		for _, n := range numbers {
			out = append(out, candidate{id: fmt.Sprint(r, "-", n), row: r, number: n})
		}
		return out
	}
	free := append(row(1, 1, 2, 3, 5), row(2, 1, 2)...)
	cases := []struct{ quantity, want int }{{1, 6}, {2, 3}, {3, 1}, {4, 0}}
	for _, tc := range cases {
		if got := countRuns(free, tc.quantity); got != tc.want {
			t.Errorf("countRuns(quantity %d) = %d, want %d", tc.quantity, got, tc.want)
		}
	}
	if got := withoutLastRow(free); len(got) != 4 {
		t.Errorf("withoutLastRow kept %d seats, want the 4 of row 1", len(got))
	}
}
