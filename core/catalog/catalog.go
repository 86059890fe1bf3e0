// Package catalog reads and validates tour catalogs: venues with their
// sections and price tiers, and the shows that go on sale. It ships the LUX
// Tour Spain catalog and a one-show catalog for smoke tests.
//
// A catalog is JSON. Seated sections give rows and seats per row; standing
// sections give a capacity. Every show of a venue gets the venue's map.
package catalog

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

//go:embed lux.json smoke.json
var builtin embed.FS

// Catalog is a tour: venues and shows.
type Catalog struct {
	Tour   string  `json:"tour"`
	Venues []Venue `json:"venues"`
	Shows  []Show  `json:"shows"`
}

// Venue is a seat map with price tiers.
type Venue struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	City     string    `json:"city"`
	Tiers    []Tier    `json:"tiers"`
	Sections []Section `json:"sections"`
}

// Tier is a price level.
type Tier struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}

// Section is a seated block or a standing area.
type Section struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
	Tier string `json:"tier"`
	// Rank orders sections by closeness to the stage; lower is closer.
	Rank int `json:"rank"`
	// Capacity is the quota of a standing section.
	Capacity int `json:"capacity,omitempty"`
	// Rows and SeatsPerRow shape a seated section; row 1 is nearest the stage.
	Rows        int `json:"rows,omitempty"`
	SeatsPerRow int `json:"seats_per_row,omitempty"`
}

// Show is one performance, sold in its own on-sale.
type Show struct {
	ID       string    `json:"id"`
	Venue    string    `json:"venue"`
	Name     string    `json:"name"`
	StartsAt time.Time `json:"starts_at"`
}

// Places returns the number of sellable places in the section.
func (s Section) Places() int {
	if s.Kind == waitroom.SectionStanding {
		return s.Capacity
	}
	return s.Rows * s.SeatsPerRow
}

// Capacity returns the number of places in the venue.
func (v Venue) Capacity() int {
	n := 0
	for _, s := range v.Sections {
		n += s.Places()
	}
	return n
}

// Venue returns the venue with id, or nil.
func (c *Catalog) Venue(id string) *Venue {
	for i := range c.Venues {
		if c.Venues[i].ID == id {
			return &c.Venues[i]
		}
	}
	return nil
}

// Builtin returns a shipped catalog by name: "lux" or "smoke".
func Builtin(name string) (*Catalog, error) {
	body, err := builtin.ReadFile(name + ".json")
	if err != nil {
		return nil, fmt.Errorf("no built-in catalog %q; use lux, smoke or a file path", name)
	}
	return Parse(bytes.NewReader(body))
}

// Load reads a built-in catalog by name, or a catalog file by path.
func Load(nameOrPath string) (*Catalog, error) {
	if nameOrPath == "lux" || nameOrPath == "smoke" {
		return Builtin(nameOrPath)
	}
	f, err := os.Open(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", nameOrPath, err)
	}
	return c, nil
}

// Parse decodes and validates a catalog. Unknown fields are errors, so a
// misspelt key is not silently ignored.
func Parse(r io.Reader) (*Catalog, error) {
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate reports every problem of the catalog at once, each naming the
// field it concerns.
func (c *Catalog) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Tour == "" {
		bad("tour", "missing")
	}
	if len(c.Venues) == 0 {
		bad("venues", "at least one venue is required")
	}
	venueIDs := map[string]bool{}
	for i, v := range c.Venues {
		at := "venues[" + strconv.Itoa(i) + "]"
		if v.ID == "" {
			bad(at+".id", "missing")
		}
		if venueIDs[v.ID] {
			bad(at+".id", "duplicate venue %q", v.ID)
		}
		venueIDs[v.ID] = true
		if v.Name == "" {
			bad(at+".name", "missing")
		}
		tiers := map[string]bool{}
		for j, t := range v.Tiers {
			tat := fmt.Sprintf("%s.tiers[%d]", at, j)
			if t.ID == "" || tiers[t.ID] {
				bad(tat+".id", "missing or duplicate %q", t.ID)
			}
			tiers[t.ID] = true
			if t.PriceCents < 0 {
				bad(tat+".price_cents", "must not be negative, got %d", t.PriceCents)
			}
		}
		sections := map[string]bool{}
		for j, s := range v.Sections {
			sat := fmt.Sprintf("%s.sections[%d]", at, j)
			if !validPart(s.ID) || sections[s.ID] {
				bad(sat+".id", "missing, duplicate or not [a-z0-9-]: %q", s.ID)
			}
			sections[s.ID] = true
			if !tiers[s.Tier] {
				bad(sat+".tier", "unknown tier %q", s.Tier)
			}
			switch s.Kind {
			case waitroom.SectionStanding:
				if s.Capacity <= 0 {
					bad(sat+".capacity", "a standing section needs a capacity above 0, got %d", s.Capacity)
				}
				if s.Rows != 0 || s.SeatsPerRow != 0 {
					bad(sat, "a standing section has no rows or seats_per_row")
				}
			case waitroom.SectionSeated:
				if s.Rows <= 0 || s.Rows > 200 {
					bad(sat+".rows", "must be 1 to 200, got %d", s.Rows)
				}
				if s.SeatsPerRow <= 0 || s.SeatsPerRow > 500 {
					bad(sat+".seats_per_row", "must be 1 to 500, got %d", s.SeatsPerRow)
				}
				if s.Capacity != 0 {
					bad(sat+".capacity", "a seated section takes rows and seats_per_row, not capacity")
				}
			default:
				bad(sat+".kind", "must be %q or %q, got %q", waitroom.SectionSeated, waitroom.SectionStanding, s.Kind)
			}
		}
		if len(v.Sections) == 0 {
			bad(at+".sections", "at least one section is required")
		}
	}
	showIDs := map[string]bool{}
	for i, s := range c.Shows {
		at := "shows[" + strconv.Itoa(i) + "]"
		if !wire.ValidSaleID(s.ID) || showIDs[s.ID] {
			bad(at+".id", "missing, duplicate or not 1-48 of [a-z0-9-]: %q", s.ID)
		}
		showIDs[s.ID] = true
		if !venueIDs[s.Venue] {
			bad(at+".venue", "unknown venue %q", s.Venue)
		}
		if s.StartsAt.IsZero() {
			bad(at+".starts_at", "missing")
		}
	}
	if len(c.Shows) == 0 {
		bad("shows", "at least one show is required")
	}
	return errors.Join(errs...)
}

func validPart(id string) bool {
	return wire.ValidSaleID(id)
}
