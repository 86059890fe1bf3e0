package catalog_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/catalog"
)

// codeCatalog is a valid catalog built in Go, as tests of other packages
// build theirs.
func codeCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Tour: "Test",
		Venues: []catalog.Venue{{
			ID: "v", Name: "Venue", City: "Madrid",
			Tiers: []catalog.Tier{{ID: "t", Name: "Tier", PriceCents: 5000}},
			Sections: []catalog.Section{
				{ID: "s", Name: "Seated", Kind: "seated", Tier: "t", Rows: 2, SeatsPerRow: 10, Rank: 1, Blocked: []string{"1-1", "2-*"}},
				{ID: "ga", Name: "Standing", Kind: "standing", Tier: "t", Capacity: 50, BlockedPlaces: 5},
			},
		}},
		Shows: []catalog.Show{{ID: "t-1", Venue: "v", Name: "Show", StartsAt: time.Date(2026, 3, 30, 21, 0, 0, 0, time.UTC)}},
	}
}

func TestCatalog_Validate(t *testing.T) {
	if err := codeCatalog().Validate(); err != nil {
		t.Fatalf("Validate(codeCatalog) = %v", err)
	}

	// Problems built in code have no position, so each line starts with
	// the field path.
	c := codeCatalog()
	c.Tour = ""
	c.Venues[0].Sections[0].Rows = 0
	c.Venues[0].Sections[1].BlockedPlaces = 51
	c.Shows = append(c.Shows, catalog.Show{ID: "t-1", Venue: "v", Name: "Again", StartsAt: c.Shows[0].StartsAt})
	want := []string{
		"tour: missing",
		"venues[0].sections[0].rows: must be 1 to 200, got 0",
		"venues[0].sections[1].blocked_places: must be 0 to the capacity 50, got 51",
		`shows[1].id: duplicate show id "t-1", first used by shows[0]`,
	}
	err := c.Validate()
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Validate() error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var perr *catalog.Error
	if !errors.As(err, &perr) || perr.Line != 0 || perr.File != "" {
		t.Errorf("Validate() error %+v, want a *catalog.Error without a position", perr)
	}
}
