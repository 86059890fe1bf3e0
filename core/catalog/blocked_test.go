package catalog_test

import (
	"testing"

	"github.com/taquilla/taquilla/core/catalog"
)

func TestSection_IsBlocked(t *testing.T) {
	s := catalog.Section{Kind: "seated", Rows: 3, SeatsPerRow: 4, Blocked: []string{"1-2", "3-*", "bad", "9-9"}}
	tests := []struct {
		row, seat int
		want      bool
	}{
		{1, 1, false},
		{1, 2, true},
		{2, 2, false},
		{3, 1, true},
		{3, 4, true},
		{3, 5, false}, // outside the row, even though the row is blocked
		{0, 2, false},
		{9, 9, false}, // an entry out of range blocks nothing
	}
	for _, tt := range tests {
		if got := s.IsBlocked(tt.row, tt.seat); got != tt.want {
			t.Errorf("IsBlocked(%d, %d) = %v, want %v", tt.row, tt.seat, got, tt.want)
		}
	}

	standingArea := catalog.Section{Kind: "standing", Capacity: 10, BlockedPlaces: 10}
	if standingArea.IsBlocked(1, 1) {
		t.Error("IsBlocked on a standing section = true, want false")
	}
}

func TestSection_SellablePlaces(t *testing.T) {
	tests := []struct {
		name    string
		section catalog.Section
		places  int
		want    int
	}{
		{"seated_none_blocked", catalog.Section{Kind: "seated", Rows: 3, SeatsPerRow: 4}, 12, 12},
		{"seated_seats_and_row", catalog.Section{Kind: "seated", Rows: 3, SeatsPerRow: 4, Blocked: []string{"1-1", "1-2", "3-*"}}, 12, 6},
		// Duplicates and seats within a blocked row count once, and
		// entries that Validate rejects count not at all.
		{"seated_overlaps", catalog.Section{Kind: "seated", Rows: 3, SeatsPerRow: 4, Blocked: []string{"1-1", "1-1", "2-*", "2-3", "2-*", "4-1", "1-5", "x"}}, 12, 7},
		{"seated_all_blocked", catalog.Section{Kind: "seated", Rows: 2, SeatsPerRow: 4, Blocked: []string{"1-*", "2-*"}}, 8, 0},
		{"standing", catalog.Section{Kind: "standing", Capacity: 100, BlockedPlaces: 30}, 100, 70},
		{"standing_over_blocked", catalog.Section{Kind: "standing", Capacity: 100, BlockedPlaces: 130}, 100, 0},
		{"standing_negative_blocked", catalog.Section{Kind: "standing", Capacity: 100, BlockedPlaces: -5}, 100, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.section.Places(); got != tt.places {
				t.Errorf("Places() = %d, want %d (blocked places stay in the capacity)", got, tt.places)
			}
			if got := tt.section.SellablePlaces(); got != tt.want {
				t.Errorf("SellablePlaces() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestSection_blockedAgree checks that IsBlocked and SellablePlaces count
// the same seats.
func TestSection_blockedAgree(t *testing.T) {
	s := catalog.Section{Kind: "seated", Rows: 5, SeatsPerRow: 6, Blocked: []string{"1-1", "1-1", "2-*", "2-3", "5-6", "6-1", "3-7"}}
	blocked := 0
	for row := 1; row <= s.Rows; row++ {
		for seat := 1; seat <= s.SeatsPerRow; seat++ {
			if s.IsBlocked(row, seat) {
				blocked++
			}
		}
	}
	if got := s.Places() - s.SellablePlaces(); got != blocked {
		t.Errorf("Places - SellablePlaces = %d, but IsBlocked is true for %d seats", got, blocked)
	}
}
