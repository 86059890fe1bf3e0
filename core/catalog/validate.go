package catalog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Limits of a catalog. The database loader writes one row per place, so
// the bounds on section sizes also bound the work of loading a show.
const (
	maxRows             = 200
	maxSeatsPerRow      = 500
	maxStandingCapacity = 100_000 // the size of the largest seated section, 200 × 500
	maxPriceCents       = 1_000_000
)

// Validate reports every problem of the catalog at once, as an errors.Join
// of *Error values that name the field each one concerns.
func (c *Catalog) Validate() error {
	return joinProblems(c.problems())
}

// validator collects the problems of one catalog.
type validator struct {
	problems []*Error
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, &Error{Path: path, Message: fmt.Sprintf(format, args...)})
}

// text checks the string field at path. It must be present if required.
// It must be valid UTF-8 without control characters such as line breaks,
// because names and ids go to the database, fan pages and logs as one line.
func (v *validator) text(path, value string, required bool) {
	switch {
	case value == "":
		if required {
			v.addf(path, "missing")
		}
	case !utf8.ValidString(value):
		v.addf(path, "must be valid UTF-8, got %q", value)
	case strings.ContainsFunc(value, unicode.IsControl):
		v.addf(path, "must not contain control characters such as line breaks or tabs, got %q", value)
	}
}

// isCleanText reports whether s passes the checks of validator.text.
func isCleanText(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// problems returns the problems of c in the order of its fields.
func (c *Catalog) problems() []*Error {
	var v validator
	v.text("tour", c.Tour, true)

	if len(c.Venues) == 0 {
		v.addf("venues", "at least one venue is required")
	}
	venues := map[string]int{} // venue id → index of the first venue with it
	for i := range c.Venues {
		at := "venues[" + strconv.Itoa(i) + "]"
		id := c.Venues[i].ID
		if first, dup := venues[id]; dup && id != "" {
			v.addf(at+".id", "duplicate venue id %q, first used by venues[%d]", id, first)
		} else {
			venues[id] = i
		}
		v.venue(at, &c.Venues[i])
	}

	if len(c.Shows) == 0 {
		v.addf("shows", "at least one show is required")
	}
	shows := map[string]int{} // show id → index of the first show with it
	for i, s := range c.Shows {
		at := "shows[" + strconv.Itoa(i) + "]"
		switch first, dup := shows[s.ID]; {
		case s.ID == "":
			v.addf(at+".id", "missing")
		case !wire.ValidSaleID(s.ID):
			v.addf(at+".id", "must be 1 to 48 characters of a-z, 0-9 and -, got %q", s.ID)
		case dup:
			v.addf(at+".id", "duplicate show id %q, first used by shows[%d]", s.ID, first)
		default:
			shows[s.ID] = i
		}
		if s.Venue == "" {
			v.addf(at+".venue", "missing")
		} else if _, ok := venues[s.Venue]; !ok {
			v.addf(at+".venue", "unknown venue %q", s.Venue)
		}
		v.text(at+".name", s.Name, true)
		if s.StartsAt.IsZero() {
			v.addf(at+".starts_at", "missing")
		}
	}
	return v.problems
}

// venue checks the fields, tiers and sections of the venue at path at.
func (v *validator) venue(at string, ven *Venue) {
	v.text(at+".id", ven.ID, true)
	v.text(at+".name", ven.Name, true)
	v.text(at+".city", ven.City, false)

	tiers := map[string]int{} // tier id → index of the first tier with it
	var tierIDs []string
	for j, t := range ven.Tiers {
		tat := fmt.Sprintf("%s.tiers[%d]", at, j)
		switch first, dup := tiers[t.ID]; {
		case !isCleanText(t.ID):
			v.text(tat+".id", t.ID, true)
		case dup:
			v.addf(tat+".id", "duplicate tier id %q, first used by %s.tiers[%d]", t.ID, at, first)
		default:
			tiers[t.ID] = j
			tierIDs = append(tierIDs, strconv.Quote(t.ID))
		}
		v.text(tat+".name", t.Name, true)
		if t.PriceCents < 0 || t.PriceCents > maxPriceCents {
			v.addf(tat+".price_cents", "must be 0 to %d cents, got %d", maxPriceCents, t.PriceCents)
		}
	}
	if len(ven.Tiers) == 0 {
		v.addf(at+".tiers", "at least one tier is required")
	}

	if len(ven.Sections) == 0 {
		v.addf(at+".sections", "at least one section is required")
	}
	sections := map[string]int{} // section id → index of the first section with it
	for j := range ven.Sections {
		s := &ven.Sections[j]
		sat := fmt.Sprintf("%s.sections[%d]", at, j)
		switch first, dup := sections[s.ID]; {
		case s.ID == "":
			v.addf(sat+".id", "missing")
		case !wire.ValidSaleID(s.ID):
			v.addf(sat+".id", "must be 1 to 48 characters of a-z, 0-9 and -, got %q", s.ID)
		case dup:
			v.addf(sat+".id", "duplicate section id %q, first used by %s.sections[%d]", s.ID, at, first)
		default:
			sections[s.ID] = j
		}
		v.text(sat+".name", s.Name, true)
		if _, ok := tiers[s.Tier]; !ok {
			switch {
			case s.Tier == "":
				v.addf(sat+".tier", "missing")
			case len(tierIDs) == 0:
				v.addf(sat+".tier", "unknown tier %q; the venue has no tiers", s.Tier)
			default:
				v.addf(sat+".tier", "unknown tier %q, want one of %s", s.Tier, strings.Join(tierIDs, ", "))
			}
		}
		if s.Rank < 0 {
			v.addf(sat+".rank", "must not be negative, got %d", s.Rank)
		}
		v.sectionShape(sat, s)
	}
}

// sectionShape checks the fields that depend on the kind of the section at
// path sat: its size and its blocked places.
func (v *validator) sectionShape(sat string, s *Section) {
	switch s.Kind {
	case waitroom.SectionStanding:
		if s.Capacity <= 0 || s.Capacity > maxStandingCapacity {
			v.addf(sat+".capacity", "a standing section needs a capacity of 1 to %d, got %d", maxStandingCapacity, s.Capacity)
		}
		if s.Rows != 0 {
			v.addf(sat+".rows", "a standing section takes capacity, not rows")
		}
		if s.SeatsPerRow != 0 {
			v.addf(sat+".seats_per_row", "a standing section takes capacity, not seats_per_row")
		}
		if len(s.Blocked) > 0 {
			v.addf(sat+".blocked", "a standing section takes a count in blocked_places, not a list in blocked")
		}
		if s.BlockedPlaces < 0 || s.BlockedPlaces > max(s.Capacity, 0) {
			v.addf(sat+".blocked_places", "must be 0 to the capacity %d, got %d", s.Capacity, s.BlockedPlaces)
		}
	case waitroom.SectionSeated:
		rowsOK := s.Rows > 0 && s.Rows <= maxRows
		seatsOK := s.SeatsPerRow > 0 && s.SeatsPerRow <= maxSeatsPerRow
		if !rowsOK {
			v.addf(sat+".rows", "must be 1 to %d, got %d", maxRows, s.Rows)
		}
		if !seatsOK {
			v.addf(sat+".seats_per_row", "must be 1 to %d, got %d", maxSeatsPerRow, s.SeatsPerRow)
		}
		if s.Capacity != 0 {
			v.addf(sat+".capacity", "a seated section takes rows and seats_per_row, not capacity")
		}
		if s.BlockedPlaces != 0 {
			v.addf(sat+".blocked_places", "a seated section takes a list of seats in blocked, not a count in blocked_places")
		}
		v.blocked(sat, s, rowsOK && seatsOK)
	default:
		v.addf(sat+".kind", "must be %q or %q, got %q", waitroom.SectionSeated, waitroom.SectionStanding, s.Kind)
	}
}

// blocked checks the blocked list of the seated section at path sat. Seats
// must be within the section and listed once, so the blocked seats never
// outnumber the places. The bounds are checked only when sized is true,
// because with a missing or invalid size every entry would be out of range.
func (v *validator) blocked(sat string, s *Section, sized bool) {
	wholeRows := map[int]int{} // row → index of the entry that blocks it whole
	entries := make([]blockedSeat, len(s.Blocked))
	valid := make([]bool, len(s.Blocked))
	for j, text := range s.Blocked {
		at := fmt.Sprintf("%s.blocked[%d]", sat, j)
		b, ok := parseBlocked(text)
		switch {
		case !ok:
			v.addf(at, `must be "row-seat" such as "12-7", or "row-*" for a whole row, got %q`, text)
			continue
		case sized && (b.row < 1 || b.row > s.Rows):
			v.addf(at, "row %d is out of range; the section has rows 1 to %d", b.row, s.Rows)
			continue
		case sized && !b.wholeRow && (b.seat < 1 || b.seat > s.SeatsPerRow):
			v.addf(at, "seat %d is out of range; each row has seats 1 to %d", b.seat, s.SeatsPerRow)
			continue
		}
		entries[j], valid[j] = b, true
		if !b.wholeRow {
			continue
		}
		if first, dup := wholeRows[b.row]; dup {
			v.addf(at, "duplicate of blocked[%d], which blocks row %d already", first, b.row)
			valid[j] = false
			continue
		}
		wholeRows[b.row] = j
	}

	// Single seats are checked after every whole row is known, so that a
	// seat listed before its row is found too.
	seats := map[[2]int]int{} // row and seat → index of the entry that blocks it
	for j, b := range entries {
		if !valid[j] || b.wholeRow {
			continue
		}
		at := fmt.Sprintf("%s.blocked[%d]", sat, j)
		key := [2]int{b.row, b.seat}
		if row, dup := wholeRows[b.row]; dup {
			v.addf(at, "seat %d-%d is blocked already by blocked[%d], which blocks row %d whole", b.row, b.seat, row, b.row)
		} else if first, dup := seats[key]; dup {
			v.addf(at, "duplicate of blocked[%d], which blocks seat %d-%d already", first, b.row, b.seat)
		} else {
			seats[key] = j
		}
	}
}

// maxReported bounds the problems that one error reports, so that a file
// with a systematic mistake stays readable.
const maxReported = 100

// joinProblems returns the problems as one errors.Join, or nil if there are
// none. Past maxReported problems, one last Error counts the rest.
func joinProblems(problems []*Error) error {
	if len(problems) == 0 {
		return nil
	}
	reported := problems[:min(len(problems), maxReported)]
	errs := make([]error, 0, len(reported)+1)
	for _, p := range reported {
		errs = append(errs, p)
	}
	if rest := len(problems) - len(reported); rest > 0 {
		errs = append(errs, &Error{File: reported[0].File, Message: fmt.Sprintf("%d more problems not shown", rest)})
	}
	return errors.Join(errs...)
}
