// Package catalog reads and validates tour catalogs: venues with their
// sections and price tiers, and the shows that go on sale. It ships the LUX
// Tour Spain catalog and a one-show catalog for smoke tests.
//
// A catalog is one YAML document, written by hand by a promoter. JSON is a
// subset of YAML, so a JSON catalog parses too. Seated sections give rows
// and seats per row, standing sections give a capacity, and either kind may
// hold back seats or places that are not for sale. Every show of a venue gets
// the venue's map. docs/catalog.md is the format reference.
//
// Every problem names the line and column of the field it concerns, such as
//
//	lux.yaml:73:57: venues[0].sections[3].rows: must be 1 to 200, got 0
//
// Parse reads the source into a syntax tree with github.com/goccy/go-yaml
// and keeps it while it checks and decodes. Problems of shape (unknown
// fields, values of the wrong type) are found by walking the tree, so they
// carry the position of their node. Validate works on the decoded Catalog
// and names each problem by its field path. Parse then looks that path up
// in the tree to find its position.
package catalog

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
)

//go:embed lux.yaml smoke.yaml
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
	// Blocked lists the seats of a seated section that are not for sale,
	// such as production holds or seats sold through other channels. An
	// entry is "row-seat" ("12-7") or a whole row ("12-*").
	Blocked []string `json:"blocked,omitempty"`
	// BlockedPlaces is the number of places of a standing section that are
	// not for sale.
	BlockedPlaces int `json:"blocked_places,omitempty"`
}

// Show is one performance, sold in its own on-sale.
type Show struct {
	ID       string    `json:"id"`
	Venue    string    `json:"venue"`
	Name     string    `json:"name"`
	StartsAt time.Time `json:"starts_at"`
}

// Places returns the physical capacity of the section, blocked places
// included. SellablePlaces leaves the blocked ones out.
func (s Section) Places() int {
	if s.Kind == waitroom.SectionStanding {
		return s.Capacity
	}
	return s.Rows * s.SeatsPerRow
}

// Capacity returns the number of places in the venue, blocked places
// included.
func (v Venue) Capacity() int {
	n := 0
	for _, s := range v.Sections {
		n += s.Places()
	}
	return n
}

// SellableCapacity returns the number of places in the venue that are for
// sale.
func (v Venue) SellableCapacity() int {
	n := 0
	for _, s := range v.Sections {
		n += s.SellablePlaces()
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
	file := name + ".yaml"
	src, err := builtin.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("no built-in catalog %q; use lux, smoke or a file path", name)
	}
	return parseSource(file, src)
}

// Load reads a built-in catalog by name ("lux" or "smoke"), or a catalog
// file by path. A file must end in .yaml, .yml or .json. Errors in the
// file are reported with the path as given.
func Load(nameOrPath string) (*Catalog, error) {
	if nameOrPath == "lux" || nameOrPath == "smoke" {
		return Builtin(nameOrPath)
	}
	switch filepath.Ext(nameOrPath) {
	case ".yaml", ".yml", ".json":
	default:
		return nil, fmt.Errorf("catalog %s: unsupported file extension, want .yaml, .yml or .json, or the built-in name lux or smoke", nameOrPath)
	}
	f, err := os.Open(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	defer f.Close()
	return ParseNamed(nameOrPath, f)
}
