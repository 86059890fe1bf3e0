package catalog_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/taquilla/taquilla/core/catalog"
)

// validYAML is a small valid catalog with one item per line, so that the
// cases of TestParse_errors can name lines: 6 is the tier, 8 the seated
// section, 9 the standing section and 11 the show.
const validYAML = `tour: Test tour
venues:
  - id: v
    name: Venue
    tiers:
      - {id: t, name: Tier, price_cents: 5000}
    sections:
      - {id: s, name: Seated, kind: seated, rows: 10, seats_per_row: 20, tier: t, rank: 1}
      - {id: ga, name: Standing, kind: standing, capacity: 100, tier: t, rank: 0}
shows:
  - {id: show-1, venue: v, name: Show, starts_at: 2026-03-30T21:00:00+02:00}
`

func TestParse_valid(t *testing.T) {
	c, err := catalog.ParseNamed("t.yaml", strings.NewReader(validYAML))
	if err != nil {
		t.Fatalf("ParseNamed(validYAML): %v", err)
	}
	if got := c.Venues[0].Capacity(); got != 300 {
		t.Errorf("capacity = %d, want 300", got)
	}
}

// TestParse_errors edits validYAML (the first occurrence of old becomes
// new) and compares the whole error text, one line per problem.
func TestParse_errors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		// Syntax and document structure.
		{"syntax_indent", "tour: Test tour", "tour: Test tour\n  bad indent: 1",
			[]string{"t.yaml:1:7: mapping value is not allowed in this context"}},
		{"syntax_unterminated_quote", "tour: Test tour", "tour: 'unterminated",
			[]string{"t.yaml:1:7: could not find end character of single-quoted text"}},
		{"duplicate_key", "tour: Test tour", "tour: Test tour\ntour: again",
			[]string{`t.yaml:2:1: mapping key "tour" already defined at [1:1]`}},
		{"two_documents", "shows:", "---\ntour: Other\nshows:",
			[]string{"t.yaml:10:1: a catalog is one YAML document, but a second document starts here"}},
		{"not_a_mapping", validYAML, "- tour\n- venues\n",
			[]string{"t.yaml:1:1: must be a mapping of the fields tour, venues, shows, got a sequence"}},
		{"nesting", "tour: Test tour", "tour: " + strings.Repeat("[", 40),
			[]string{"t.yaml:1:39: collections nest deeper than 32 levels"}},

		// Shape: unknown fields and values of the wrong type.
		{"unknown_field", "tour: Test tour", "tour: Test tour\ncolour: red",
			[]string{"t.yaml:2:1: colour: unknown field, want one of tour, venues, shows"}},
		{"unknown_fields_all_reported", "    name: Venue\n", "    nmae: Venue\n    rowz: 1\n",
			[]string{
				"t.yaml:4:5: venues[0].nmae: unknown field, want one of id, name, city, tiers, sections",
				"t.yaml:5:5: venues[0].rowz: unknown field, want one of id, name, city, tiers, sections",
			}},
		{"float_for_integer", "price_cents: 5000", "price_cents: 50.5",
			[]string{"t.yaml:6:29: venues[0].tiers[0].price_cents: must be a whole number, got 50.5"}},
		{"string_for_integer", "price_cents: 5000", `price_cents: "5000"`,
			[]string{`t.yaml:6:29: venues[0].tiers[0].price_cents: must be a whole number, got "5000"`}},
		{"hex_integer", "rows: 10", "rows: 0x0A",
			[]string{"t.yaml:8:45: venues[0].sections[0].rows: must be a whole number in decimal digits, got 0x0A"}},
		{"sequence_for_string", "tour: Test tour", "tour: [a]",
			[]string{"t.yaml:1:1: tour: must be a string, got a sequence"}},
		{"boolean_for_string", "tour: Test tour", "tour: true",
			[]string{"t.yaml:1:1: tour: YAML reads true as a boolean; write it in quotes to keep the text"}},
		{"octal_looking_id", "{id: s,", "{id: 0101,",
			[]string{"t.yaml:8:10: venues[0].sections[0].id: YAML reads 0101 as a number; write it in quotes to keep the text"}},
		{"tag", "name: Show,", "name: !!str Show,",
			[]string{"t.yaml:11:28: shows[0].name: YAML tags such as !!str are not supported; remove the tag, and quote the value if it must stay text"}},
		// goccy/go-yaml v1.19.2 panics when it decodes a tagged scalar into
		// a slice. Parse must report the tag and not crash.
		{"tag_on_scalar_for_sequence", "rank: 1}", "rank: 1, blocked: !x 5}",
			[]string{"t.yaml:8:92: venues[0].sections[0].blocked: YAML tags such as !x are not supported; remove the tag, and quote the value if it must stay text"}},
		{"string_for_sequence", "rank: 1}", `rank: 1, blocked: "1-1"}`,
			[]string{`t.yaml:8:92: venues[0].sections[0].blocked: must be a sequence, got "1-1"`}},

		// Tour, venues and tiers.
		{"tour_missing", "tour: Test tour", "tour:",
			[]string{"t.yaml:1:1: tour: missing"}},
		{"venue_id_missing", "  - id: v\n", "  - city: X\n",
			[]string{
				"t.yaml:3:5: venues[0].id: missing",
				`t.yaml:11:18: shows[0].venue: unknown venue "v"`,
			}},
		{"venue_name_missing", "    name: Venue\n", "",
			[]string{"t.yaml:3:5: venues[0].name: missing"}},
		{"venue_id_duplicate", "shows:", "  - {id: v, name: Again, tiers: [{id: t, name: T, price_cents: 1}], sections: [{id: a, name: A, kind: standing, capacity: 1, tier: t}]}\nshows:",
			[]string{`t.yaml:10:6: venues[1].id: duplicate venue id "v", first used by venues[0]`}},
		{"venue_empty", "    tiers:\n      - {id: t, name: Tier, price_cents: 5000}\n    sections:\n      - {id: s, name: Seated, kind: seated, rows: 10, seats_per_row: 20, tier: t, rank: 1}\n      - {id: ga, name: Standing, kind: standing, capacity: 100, tier: t, rank: 0}\n",
			"    tiers: []\n    sections: []\n",
			[]string{
				"t.yaml:5:5: venues[0].tiers: at least one tier is required",
				"t.yaml:6:5: venues[0].sections: at least one section is required",
			}},
		{"tier_price_negative", "price_cents: 5000", "price_cents: -1",
			[]string{"t.yaml:6:29: venues[0].tiers[0].price_cents: must be 0 to 1000000 cents, got -1"}},
		{"tier_price_too_high", "price_cents: 5000", "price_cents: 1000001",
			[]string{"t.yaml:6:29: venues[0].tiers[0].price_cents: must be 0 to 1000000 cents, got 1000001"}},
		{"tier_name_missing", "{id: t, name: Tier,", "{id: t,",
			[]string{"t.yaml:6:9: venues[0].tiers[0].name: missing"}},
		{"tier_id_duplicate", "- {id: t, name: Tier, price_cents: 5000}", "- {id: t, name: Tier, price_cents: 5000}\n      - {id: t, name: Again, price_cents: 1}",
			[]string{`t.yaml:7:10: venues[0].tiers[1].id: duplicate tier id "t", first used by venues[0].tiers[0]`}},

		// Sections.
		{"rows_zero", "rows: 10", "rows: 0",
			[]string{"t.yaml:8:45: venues[0].sections[0].rows: must be 1 to 200, got 0"}},
		{"rows_too_many", "rows: 10", "rows: 201",
			[]string{"t.yaml:8:45: venues[0].sections[0].rows: must be 1 to 200, got 201"}},
		{"seats_per_row_too_many", "seats_per_row: 20", "seats_per_row: 501",
			[]string{"t.yaml:8:55: venues[0].sections[0].seats_per_row: must be 1 to 500, got 501"}},
		{"seats_per_row_missing", "seats_per_row: 20, ", "",
			[]string{"t.yaml:8:9: venues[0].sections[0].seats_per_row: must be 1 to 500, got 0"}},
		{"kind_unknown", "kind: seated", "kind: sitting",
			[]string{`t.yaml:8:31: venues[0].sections[0].kind: must be "seated" or "standing", got "sitting"`}},
		{"section_name_missing", "name: Seated, ", "",
			[]string{"t.yaml:8:9: venues[0].sections[0].name: missing"}},
		{"section_tier_unknown", "tier: t, rank: 1", "tier: x, rank: 1",
			[]string{`t.yaml:8:74: venues[0].sections[0].tier: unknown tier "x", want one of "t"`}},
		{"section_rank_negative", "rank: 1}", "rank: -1}",
			[]string{"t.yaml:8:83: venues[0].sections[0].rank: must not be negative, got -1"}},
		{"section_id_invalid", "{id: s,", "{id: S 1,",
			[]string{`t.yaml:8:10: venues[0].sections[0].id: must be 1 to 48 characters of a-z, 0-9 and -, got "S 1"`}},
		{"section_id_duplicate", "{id: ga,", "{id: s,",
			[]string{`t.yaml:9:10: venues[0].sections[1].id: duplicate section id "s", first used by venues[0].sections[0]`}},
		{"standing_capacity_zero", "capacity: 100", "capacity: 0",
			[]string{"t.yaml:9:50: venues[0].sections[1].capacity: a standing section needs a capacity of 1 to 100000, got 0"}},
		{"standing_capacity_too_large", "capacity: 100", "capacity: 100001",
			[]string{"t.yaml:9:50: venues[0].sections[1].capacity: a standing section needs a capacity of 1 to 100000, got 100001"}},
		{"standing_with_rows", "capacity: 100", "capacity: 100, rows: 2",
			[]string{"t.yaml:9:65: venues[0].sections[1].rows: a standing section takes capacity, not rows"}},
		{"seated_with_capacity", "rank: 1}", "rank: 1, capacity: 5}",
			[]string{"t.yaml:8:92: venues[0].sections[0].capacity: a seated section takes rows and seats_per_row, not capacity"}},

		// Blocked seats and places.
		{"blocked_places_over_capacity", "capacity: 100", "capacity: 100, blocked_places: 101",
			[]string{"t.yaml:9:65: venues[0].sections[1].blocked_places: must be 0 to the capacity 100, got 101"}},
		{"blocked_places_negative", "capacity: 100", "capacity: 100, blocked_places: -1",
			[]string{"t.yaml:9:65: venues[0].sections[1].blocked_places: must be 0 to the capacity 100, got -1"}},
		{"blocked_list_on_standing", "capacity: 100", `capacity: 100, blocked: ["1-1"]`,
			[]string{"t.yaml:9:65: venues[0].sections[1].blocked: a standing section takes a count in blocked_places, not a list in blocked"}},
		{"blocked_places_on_seated", "rank: 1}", "rank: 1, blocked_places: 5}",
			[]string{"t.yaml:8:92: venues[0].sections[0].blocked_places: a seated section takes a list of seats in blocked, not a count in blocked_places"}},
		{"blocked_entries", "rank: 1}", `rank: 1, blocked: ["1-1", "1-1", "10-20", "11-1", "1-21", "1-0", "2-*", "2-3", "2-*", "A-1", "+1-2", 7]}`,
			[]string{
				"t.yaml:8:109: venues[0].sections[0].blocked[1]: duplicate of blocked[0], which blocks seat 1-1 already",
				"t.yaml:8:125: venues[0].sections[0].blocked[3]: row 11 is out of range; the section has rows 1 to 10",
				"t.yaml:8:133: venues[0].sections[0].blocked[4]: seat 21 is out of range; each row has seats 1 to 20",
				"t.yaml:8:141: venues[0].sections[0].blocked[5]: seat 0 is out of range; each row has seats 1 to 20",
				"t.yaml:8:155: venues[0].sections[0].blocked[7]: seat 2-3 is blocked already by blocked[6], which blocks row 2 whole",
				"t.yaml:8:162: venues[0].sections[0].blocked[8]: duplicate of blocked[6], which blocks row 2 already",
				`t.yaml:8:169: venues[0].sections[0].blocked[9]: must be "row-seat" such as "12-7", or "row-*" for a whole row, got "A-1"`,
				`t.yaml:8:176: venues[0].sections[0].blocked[10]: must be "row-seat" such as "12-7", or "row-*" for a whole row, got "+1-2"`,
				`t.yaml:8:184: venues[0].sections[0].blocked[11]: must be "row-seat" such as "12-7", or "row-*" for a whole row, got "7"`,
			}},

		// Shows.
		{"shows_empty", "shows:\n  - {id: show-1, venue: v, name: Show, starts_at: 2026-03-30T21:00:00+02:00}\n", "shows: []\n",
			[]string{"t.yaml:10:1: shows: at least one show is required"}},
		{"show_id_invalid", "{id: show-1,", "{id: Show_1,",
			[]string{`t.yaml:11:6: shows[0].id: must be 1 to 48 characters of a-z, 0-9 and -, got "Show_1"`}},
		{"show_id_duplicate", "  - {id: show-1,", "  - {id: show-1, venue: v, name: Again, starts_at: 2026-04-01T21:00:00+02:00}\n  - {id: show-1,",
			[]string{`t.yaml:12:6: shows[1].id: duplicate show id "show-1", first used by shows[0]`}},
		{"show_venue_unknown", "venue: v,", "venue: w,",
			[]string{`t.yaml:11:18: shows[0].venue: unknown venue "w"`}},
		{"show_name_missing", "name: Show, ", "",
			[]string{"t.yaml:11:5: shows[0].name: missing"}},
		{"starts_at_missing", ", starts_at: 2026-03-30T21:00:00+02:00", "",
			[]string{"t.yaml:11:5: shows[0].starts_at: missing"}},
		{"starts_at_date_only", "starts_at: 2026-03-30T21:00:00+02:00", "starts_at: 2026-03-30",
			[]string{"t.yaml:11:40: shows[0].starts_at: must be a date and time with its UTC offset, such as 2026-03-30T21:00:00+02:00, got 2026-03-30"}},
		{"starts_at_no_offset", "starts_at: 2026-03-30T21:00:00+02:00", "starts_at: 2026-03-30 21:00:00",
			[]string{"t.yaml:11:40: shows[0].starts_at: must be a date and time with its UTC offset, such as 2026-03-30T21:00:00+02:00, got 2026-03-30 21:00:00"}},
		{"starts_at_invalid_month", "starts_at: 2026-03-30T21:00:00+02:00", "starts_at: 2026-13-45T21:00:00+02:00",
			[]string{"t.yaml:11:40: shows[0].starts_at: must be a date and time with its UTC offset, such as 2026-03-30T21:00:00+02:00, got 2026-13-45T21:00:00+02:00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(validYAML, tt.old, tt.new, 1)
			if src == validYAML {
				t.Fatalf("the case does not change validYAML: %q not found", tt.old)
			}
			c, err := catalog.ParseNamed("t.yaml", strings.NewReader(src))
			if err == nil {
				t.Fatalf("ParseNamed() = %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("ParseNamed() returned a catalog with its error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("ParseNamed() error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestParse_blockStyle checks positions in the block style of lux.yaml,
// where each field has its own line.
func TestParse_blockStyle(t *testing.T) {
	src := `tour: Test tour
venues:
  - id: v
    name: Venue
    tiers:
      - id: t
        name: Tier
        price_cents: 5000
    sections:
      - id: s
        name: Seated
        kind: seated
        rows: 0
        seats_per_row: 20
        tier: t
        blocked:
          - 1-1
          - 1-*
shows:
  - id: show-1
    venue: v
    name: Show
    starts_at: 2026-03-30T21:00:00+02:00
`
	want := "t.yaml:13:9: venues[0].sections[0].rows: must be 1 to 200, got 0\n" +
		"t.yaml:17:13: venues[0].sections[0].blocked[0]: seat 1-1 is blocked already by blocked[1], which blocks row 1 whole"
	_, err := catalog.ParseNamed("t.yaml", strings.NewReader(src))
	if err == nil || err.Error() != want {
		t.Errorf("ParseNamed() error:\n%v\nwant:\n%s", err, want)
	}

	// Without a valid size, the bounds of blocked entries go unchecked,
	// because every entry would be out of range.
	src = strings.Replace(src, "- 1-1", "- 9-99", 1)
	want = "t.yaml:13:9: venues[0].sections[0].rows: must be 1 to 200, got 0"
	_, err = catalog.ParseNamed("t.yaml", strings.NewReader(src))
	if err == nil || err.Error() != want {
		t.Errorf("ParseNamed() error:\n%v\nwant:\n%s", err, want)
	}

	// With the size fixed, they are checked.
	src = strings.Replace(src, "rows: 0", "rows: 5", 1)
	want = "t.yaml:17:13: venues[0].sections[0].blocked[0]: row 9 is out of range; the section has rows 1 to 5"
	_, err = catalog.ParseNamed("t.yaml", strings.NewReader(src))
	if err == nil || err.Error() != want {
		t.Errorf("ParseNamed() error:\n%v\nwant:\n%s", err, want)
	}
}

// TestParse_json checks that a JSON catalog parses and that its errors
// carry JSON lines too.
func TestParse_json(t *testing.T) {
	src := `{
	"tour": "Test tour",
	"venues": [{
		"id": "v", "name": "Venue",
		"tiers": [{"id": "t", "name": "Tier", "price_cents": 5000}],
		"sections": [
			{"id": "s", "name": "Seated", "kind": "seated", "rows": 10, "seats_per_row": 20, "tier": "t", "rank": 1, "blocked": ["1-1", "2-*"]},
			{"id": "ga", "name": "Standing", "kind": "standing", "capacity": 100, "blocked_places": 10, "tier": "t", "rank": 0}
		]
	}],
	"shows": [{"id": "show-1", "venue": "v", "name": "Show", "starts_at": "2026-03-30T21:00:00+02:00"}]
}
`
	c, err := catalog.ParseNamed("t.json", strings.NewReader(src))
	if err != nil {
		t.Fatalf("ParseNamed(JSON): %v", err)
	}
	if got := c.Venues[0].SellableCapacity(); got != 300-1-20-10 {
		t.Errorf("sellable capacity = %d, want 269", got)
	}

	bad := strings.Replace(src, `"rows": 10`, `"rows": 10, "colour": "red"`, 1)
	want := `t.json:7:64: venues[0].sections[0].colour: unknown field, want one of id, name, kind, tier, rank, capacity, rows, seats_per_row, blocked, blocked_places`
	_, err = catalog.ParseNamed("t.json", strings.NewReader(bad))
	if err == nil || err.Error() != want {
		t.Errorf("ParseNamed(JSON with unknown field) error = %v, want %s", err, want)
	}

	bad = strings.Replace(src, `"price_cents": 5000}]`, `"price_cents": 5000]`, 1)
	_, err = catalog.ParseNamed("t.json", strings.NewReader(bad))
	if err == nil || !strings.HasPrefix(err.Error(), "t.json:5:") {
		t.Errorf("ParseNamed(JSON with a syntax error) error = %v, want it at t.json:5", err)
	}
}

func TestParse_errorValues(t *testing.T) {
	src := strings.Replace(validYAML, "rows: 10", "rows: 0", 1)
	_, err := catalog.Parse(strings.NewReader(src))
	var perr *catalog.Error
	if !errors.As(err, &perr) {
		t.Fatalf("Parse() error %v is not a *catalog.Error", err)
	}
	want := catalog.Error{Line: 8, Column: 45, Path: "venues[0].sections[0].rows", Message: "must be 1 to 200, got 0"}
	if *perr != want {
		t.Errorf("Parse() error = %+v, want %+v", *perr, want)
	}
	if got := perr.Error(); got != "8:45: venues[0].sections[0].rows: must be 1 to 200, got 0" {
		t.Errorf("Error() without a file name = %q", got)
	}

	// A decoder error stays reachable through Unwrap.
	_, err = catalog.Parse(strings.NewReader("tour: 'unterminated"))
	var syntax *yaml.SyntaxError
	if !errors.As(err, &syntax) {
		t.Errorf("Parse(unterminated quote) error %v does not wrap a *yaml.SyntaxError", err)
	}
}

func TestParse_empty(t *testing.T) {
	want := "t.yaml: tour: missing\nt.yaml: venues: at least one venue is required\nt.yaml: shows: at least one show is required"
	for _, src := range []string{"", "# only a comment\n", "null\n", "\xef\xbb\xbf"} {
		_, err := catalog.ParseNamed("t.yaml", strings.NewReader(src))
		if err == nil || err.Error() != want {
			t.Errorf("ParseNamed(%q) error = %v, want\n%s", src, err, want)
		}
	}
}

func TestParse_byteOrderMark(t *testing.T) {
	src := "\xef\xbb\xbf" + strings.Replace(validYAML, "tour: Test tour", "tour:", 1)
	_, err := catalog.ParseNamed("t.yaml", strings.NewReader(src))
	if want := "t.yaml:1:1: tour: missing"; err == nil || err.Error() != want {
		t.Errorf("ParseNamed(BOM + YAML) error = %v, want %s", err, want)
	}
}

func TestParse_tooLarge(t *testing.T) {
	src := validYAML + "#" + strings.Repeat("x", 16<<20) + "\n"
	_, err := catalog.ParseNamed("t.yaml", strings.NewReader(src))
	if want := "t.yaml: larger than the limit of 16 MiB"; err == nil || err.Error() != want {
		t.Errorf("ParseNamed(17 MiB) error = %v, want %s", err, want)
	}
}

func TestParse_manyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString(validYAML)
	for range 150 {
		b.WriteString("  - {id: show-1, venue: v, name: Show, starts_at: 2026-03-30T21:00:00+02:00}\n")
	}
	_, err := catalog.ParseNamed("t.yaml", strings.NewReader(b.String()))
	if err == nil {
		t.Fatal("ParseNamed(150 duplicate shows) succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 101 || lines[100] != "t.yaml: 50 more problems not shown" {
		t.Errorf("got %d lines ending in %q, want 101 ending in the count of the 50 not shown", len(lines), lines[len(lines)-1])
	}
}
