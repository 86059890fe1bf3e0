package catalog

import (
	"strings"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// blockedSeat is one parsed entry of Section.Blocked.
type blockedSeat struct {
	row      int
	seat     int  // 0 when wholeRow
	wholeRow bool // the entry is "row-*"
}

// parseBlocked parses a Section.Blocked entry: "row-seat" or "row-*". It
// checks the syntax only; Validate checks the bounds.
func parseBlocked(entry string) (blockedSeat, bool) {
	rowText, seatText, ok := strings.Cut(entry, "-")
	if !ok {
		return blockedSeat{}, false
	}
	row, ok := parseNumber(rowText)
	if !ok {
		return blockedSeat{}, false
	}
	if seatText == "*" {
		return blockedSeat{row: row, wholeRow: true}, true
	}
	seat, ok := parseNumber(seatText)
	if !ok {
		return blockedSeat{}, false
	}
	return blockedSeat{row: row, seat: seat}, true
}

// parseNumber parses 1 to 6 decimal digits. Unlike strconv.Atoi it rejects
// signs, and the length bound keeps the result far from overflow.
func parseNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// IsBlocked reports whether the seat at row and seat (both counted from 1)
// of a seated section is not for sale. It is false for a seat outside the
// section and for every place of a standing section, whose BlockedPlaces is
// a count that names no place. Entries that Validate rejects are ignored.
//
// NOTE: each call parses Blocked again, so the cost is linear in
// len(Blocked). Loading a section calls it once per seat.
func (s Section) IsBlocked(row, seat int) bool {
	if s.Kind != waitroom.SectionSeated || row < 1 || row > s.Rows || seat < 1 || seat > s.SeatsPerRow {
		return false
	}
	for _, entry := range s.Blocked {
		b, ok := parseBlocked(entry)
		if ok && b.row == row && (b.wholeRow || b.seat == seat) {
			return true
		}
	}
	return false
}

// SellablePlaces returns the number of places of the section that are for
// sale: Places minus the blocked ones. A seat listed twice, or listed
// alone and within a blocked row, counts once. Entries that Validate
// rejects are ignored.
func (s Section) SellablePlaces() int {
	if s.Kind == waitroom.SectionStanding {
		capacity := max(s.Capacity, 0)
		return capacity - min(max(s.BlockedPlaces, 0), capacity)
	}
	return max(s.Places()-s.blockedSeats(), 0)
}

// blockedSeats counts the distinct seats within the section that Blocked
// takes off sale.
func (s Section) blockedSeats() int {
	if len(s.Blocked) == 0 {
		return 0
	}
	wholeRows := map[int]bool{}
	seats := map[[2]int]bool{}
	for _, entry := range s.Blocked {
		b, ok := parseBlocked(entry)
		if !ok || b.row < 1 || b.row > s.Rows {
			continue
		}
		if b.wholeRow {
			wholeRows[b.row] = true
		} else if b.seat >= 1 && b.seat <= s.SeatsPerRow {
			seats[[2]int{b.row, b.seat}] = true
		}
	}
	n := len(wholeRows) * s.SeatsPerRow
	for seat := range seats {
		if !wholeRows[seat[0]] {
			n++
		}
	}
	return n
}
