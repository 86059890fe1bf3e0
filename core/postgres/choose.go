package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// Best available is chosen from a READ COMMITTED view of the free seats,
// outside the hold's transaction. A scan inside a SERIALIZABLE transaction
// would leave predicate locks on the whole section, and every other buyer
// of the section would abort at commit. The hold's transaction then takes
// the chosen seats by primary key, only if they are still AVAILABLE, so a
// stale view costs a retry, never a double sale.

// sectionCache remembers each section's kind and capacity, which a loaded
// catalog never changes, and its seat view.
type sectionCache struct {
	m     sync.Map // sale and section → sectionShape
	views sync.Map // sale and section → *seatView
}

type sectionShape struct {
	kind     string
	capacity int
}

func (c *sectionCache) find(ctx context.Context, tx querier, saleID, section string) (string, int, error) {
	key := saleID + "\x00" + section
	if v, ok := c.m.Load(key); ok {
		s := v.(sectionShape)
		return s.kind, s.capacity, nil
	}
	var s sectionShape
	err := tx.QueryRow(ctx, `SELECT kind, capacity FROM sections WHERE sale_id = $1 AND id = $2`, saleID, section).Scan(&s.kind, &s.capacity)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, waitroom.Errorf(waitroom.ENOTFOUND, "no section %q in this show", section)
	}
	if err != nil {
		return "", 0, fmt.Errorf("find section: %w", err)
	}
	c.m.Store(key, s)
	return s.kind, s.capacity, nil
}

type candidate struct {
	id     string
	row    int
	number int
}

// seatView is this process's view of the free places nearest the stage in
// one section: the result of its last read, less the places that holds of
// this process chose since. Buyers choose from it without a round trip.
// Concurrent buyers in one process never choose the same place, because a
// place stays out of the view while its hold is being made. It comes back
// only with a new read if the hold failed.
//
// A view is read again when it is older than viewTTL, when it has too few
// candidates left, and after a failed hold. A place freed elsewhere (an
// expiry, a cancellation, another core replica's failed hold) is thus
// offered within viewTTL plus frontTTL, two seconds.
type seatView struct {
	mu     sync.Mutex // guards the fields below
	free   []candidate
	whole  bool      // free was every free place of the section when read
	readAt time.Time // zero when the view must be read again
	// front is the first row that had a free seat at the last read from
	// the first row, at frontAt. Reads within frontTTL start there: seats
	// sell front to back, and a read from the first row would step over
	// every sold seat of the front rows.
	front   int
	frontAt time.Time
	taking  map[string]bool // places chosen for holds not yet settled
}

const (
	// viewTTL bounds how old a seat view may be.
	viewTTL = time.Second
	// frontTTL is how long reads start at the remembered front row. A seat
	// freed in front of it is offered again once it expires.
	frontTTL = time.Second
	// firstFree is how many free places a read returns. A section of a few
	// thousand seats is read whole only when its front rows are nearly
	// gone.
	firstFree = 64
)

// view returns the seat view of a section.
func (c *sectionCache) view(key string) *seatView {
	if v, ok := c.views.Load(key); ok {
		return v.(*seatView)
	}
	v, _ := c.views.LoadOrStore(key, &seatView{taking: map[string]bool{}})
	return v.(*seatView)
}

// pickBest chooses quantity available places in a section from its view
// and reserves them in the view. In a standing section any places do,
// from a random offset, so concurrent buyers of several processes rarely
// choose the same ones. In a seated section it takes adjacent seats in one
// row, from the spread best runs nearest the stage (see bestRun).
func (db *DB) pickBest(ctx context.Context, saleID, section string, quantity, spread int, allowSplit bool, rng *rand.Rand) ([]string, *seatView, error) {
	kind, capacity, err := db.sections.find(ctx, db.Pool, saleID, section)
	if err != nil {
		return nil, nil, err
	}
	standing := kind == waitroom.SectionStanding
	v := db.sections.view(saleID + "\x00" + section)
	// The first pass may use the view as it is. Unless that view was whole,
	// the second pass reads the whole section before returning sold out.
	for pass := 0; pass < 2; pass++ {
		now := time.Now()
		v.mu.Lock()
		fresh := pass == 0 && !v.stale(now, standing, quantity, spread)
		if !fresh {
			from, limit := v.readFrom(now, standing, capacity, rng), firstFree
			if pass == 1 {
				from, limit = 0, 0
			}
			v.mu.Unlock()
			free, whole, err := readPlaces(ctx, db.Pool, saleID, section, standing, from, limit, quantity, spread)
			if err != nil {
				return nil, nil, err
			}
			v.mu.Lock()
			v.install(free, whole && (standing || from == 0), from, now)
		}
		ids := v.choose(standing, quantity, spread, allowSplit, rng)
		whole := v.whole
		v.mu.Unlock()
		if ids != nil {
			return ids, v, nil
		}
		if whole {
			// The view held every free place of the section when it was
			// read, less than viewTTL ago: a sold-out section costs no read.
			break
		}
	}
	return nil, nil, waitroom.ErrSoldOut
}

// stale reports whether the view must be read before choosing.
func (v *seatView) stale(now time.Time, standing bool, quantity, spread int) bool {
	switch {
	case v.readAt.IsZero() || now.Sub(v.readAt) >= viewTTL:
		return true
	case v.whole:
		return false
	case standing:
		return len(v.free) < quantity*spread
	}
	return countRuns(v.free, quantity) < spread
}

// readFrom returns where the next read starts: the remembered front row of
// a seated section, or a random place of a standing one.
func (v *seatView) readFrom(now time.Time, standing bool, capacity int, rng *rand.Rand) int {
	if standing {
		return 1 + rng.IntN(capacity)
	}
	if now.Sub(v.frontAt) < frontTTL {
		return v.front
	}
	return 0
}

// install replaces the view with a read made at now from row (or place)
// from, less the places being taken.
func (v *seatView) install(free []candidate, whole bool, from int, now time.Time) {
	kept := free[:0]
	for _, c := range free {
		if !v.taking[c.id] {
			kept = append(kept, c)
		}
	}
	v.free, v.whole, v.readAt = kept, whole, now
	if from == 0 && len(free) > 0 {
		v.front, v.frontAt = free[0].row, now
	}
}

// choose picks places from the view and reserves them, or returns nil.
func (v *seatView) choose(standing bool, quantity, spread int, allowSplit bool, rng *rand.Rand) []string {
	var ids []string
	switch {
	case standing:
		if len(v.free) >= quantity {
			start := rng.IntN(len(v.free) - quantity + 1)
			for _, c := range v.free[start : start+quantity] {
				ids = append(ids, c.id)
			}
		}
	default:
		ids = bestRun(v.free, quantity, spread, rng)
		if ids == nil && allowSplit && len(v.free) >= quantity {
			ids = nearestSplit(v.free, quantity, spread, rng)
		}
	}
	if ids == nil {
		return nil
	}
	for _, id := range ids {
		v.taking[id] = true
	}
	kept := v.free[:0]
	for _, c := range v.free {
		if !v.taking[c.id] {
			kept = append(kept, c)
		}
	}
	v.free = kept
	return ids
}

// settle ends the reservation of places that a hold chose. Taken places
// stay out of the view. After a failed hold the view is read again, because
// a collision means it was stale and other failures leave the places free.
// A nil view (seats chosen by the fan) does nothing.
func (v *seatView) settle(ids []string, taken bool) {
	if v == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range ids {
		delete(v.taking, id)
	}
	if !taken {
		v.readAt = time.Time{}
	}
}

// readPlaces reads up to limit free places of a section (all when limit is
// 0) and reports whether it read them all. A seated section is read from
// row from on, nearest the stage first. A standing section is read from
// place number from on, wrapping to the start for up to limit places. When
// the first limit seats do not hold spread runs of quantity once the last
// row, which the limit may have cut short, is left out, the read goes on
// to the whole section from that row.
func readPlaces(ctx context.Context, q querier, saleID, section string, standing bool, from, limit, quantity, spread int) ([]candidate, bool, error) {
	if standing {
		return readStanding(ctx, q, saleID, section, from, limit)
	}
	free, whole, err := readFree(ctx, q, saleID, section, from, limit)
	if err != nil || whole {
		return free, whole, err
	}
	// Without the last row, the rows read give the same choice as the
	// whole section when they hold enough candidates, since bestRun stops
	// after the rows that do.
	if cut := withoutLastRow(free); countRuns(cut, quantity) >= spread {
		return cut, false, nil
	}
	return readFree(ctx, q, saleID, section, from, 0)
}

// readFree reads up to limit free seats of a section (all when limit is
// 0) from row fromRow on, nearest the stage first, and reports whether it
// read them all.
func readFree(ctx context.Context, q querier, saleID, section string, fromRow, limit int) ([]candidate, bool, error) {
	n := limit
	if n == 0 {
		n = math.MaxInt32
	}
	rows, err := q.Query(ctx, `SELECT id, row_no, number FROM seats
		WHERE sale_id = $1 AND section_id = $2 AND row_no >= $3 AND state = 'AVAILABLE'
		ORDER BY row_no, number LIMIT $4`, saleID, section, fromRow, n)
	if err != nil {
		return nil, false, fmt.Errorf("find seats: %w", err)
	}
	free, err := pgx.CollectRows(rows, scanCandidate)
	if err != nil {
		return nil, false, fmt.Errorf("find seats: %w", err)
	}
	return free, limit == 0 || len(free) < limit, nil
}

// readStanding reads up to limit free places of a standing section from
// place number from on, then from the first place, and reports whether it
// read them all.
func readStanding(ctx context.Context, q querier, saleID, section string, from, limit int) ([]candidate, bool, error) {
	n := limit
	if n == 0 {
		n = math.MaxInt32
	}
	const sql = `SELECT id, row_no, number FROM seats WHERE sale_id = $1 AND section_id = $2 AND row_no = 0
		AND number >= $3 AND number < $4 AND state = 'AVAILABLE' ORDER BY number LIMIT $5`
	var free []candidate
	for _, span := range [][2]int{{from, math.MaxInt32}, {0, from}} {
		rows, err := q.Query(ctx, sql, saleID, section, span[0], span[1], n-len(free))
		if err != nil {
			return nil, false, fmt.Errorf("find standing places: %w", err)
		}
		more, err := pgx.CollectRows(rows, scanCandidate)
		if err != nil {
			return nil, false, fmt.Errorf("find standing places: %w", err)
		}
		free = append(free, more...)
		if len(free) >= n {
			return free, false, nil
		}
	}
	return free, true, nil
}

func scanCandidate(r pgx.CollectableRow) (candidate, error) {
	var c candidate
	err := r.Scan(&c.id, &c.row, &c.number)
	return c, err
}

// withoutLastRow drops the seats of the last row in free.
func withoutLastRow(free []candidate) []candidate {
	n := len(free)
	for n > 0 && free[n-1].row == free[len(free)-1].row {
		n--
	}
	return free[:n]
}

// countRuns returns how many runs of quantity adjacent seats free holds,
// counted the way bestRun collects its candidates.
func countRuns(free []candidate, quantity int) int {
	n := 0
	for i := 0; i < len(free); {
		j := i + 1
		for j < len(free) && free[j].row == free[i].row && free[j].number == free[j-1].number+1 {
			j++
		}
		n += max(j-i-quantity+1, 0)
		i = j
	}
	return n
}

// nearestSplit returns quantity seats that are not all adjacent: the free
// seats nearest the stage, starting at a random one of the first spread so
// concurrent buyers spread out. Only fans who agreed to be split get these.
func nearestSplit(free []candidate, quantity, spread int, rng *rand.Rand) []string {
	start := rng.IntN(min(spread, len(free)-quantity+1))
	ids := make([]string, quantity)
	for k := range quantity {
		ids[k] = free[start+k].id
	}
	return ids
}

// bestRun returns quantity adjacent seats from free (sorted by row, number),
// or nil when no row has such a run. It looks at the runs in the rows
// nearest the stage until it has spread candidates, prefers runs that leave
// no single seat stranded, and picks one of those at random. Buyers asking
// at the same moment thus take different seats; after a collision the
// caller widens spread, so retries fall off quickly.
func bestRun(free []candidate, quantity, spread int, rng *rand.Rand) []string {
	type option struct {
		start   int // index in free
		strands bool
	}
	var opts []option
	for i := 0; i < len(free); {
		if len(opts) >= spread && free[i].row != free[i-1].row {
			break // enough candidates from the nearest rows
		}
		// [i, j) is one block of consecutive free seats in a row.
		j := i + 1
		for j < len(free) && free[j].row == free[i].row && free[j].number == free[j-1].number+1 {
			j++
		}
		for s := i; s+quantity <= j; s++ {
			left, right := s-i, j-(s+quantity)
			opts = append(opts, option{start: s, strands: left == 1 || right == 1})
		}
		i = j
	}
	if len(opts) == 0 {
		return nil
	}
	clean := opts[:0:0]
	for _, o := range opts {
		if !o.strands {
			clean = append(clean, o)
		}
	}
	if len(clean) > 0 {
		opts = clean
	}
	o := opts[rng.IntN(min(len(opts), spread))]
	ids := make([]string, quantity)
	for k := range quantity {
		ids[k] = free[o.start+k].id
	}
	return ids
}
