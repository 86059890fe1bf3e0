package inventory_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
)

// testCatalog has one show "t-1" with a seated section "s" of one row of 50
// seats, a standing section "ga" of 50 places, a seated section "one" of a
// single seat, and a section "row" of one row of 100 seats.
func testCatalog() *catalog.Catalog {
	return &catalog.Catalog{
		Tour: "Test",
		Venues: []catalog.Venue{{
			ID: "v", Name: "Venue", City: "Madrid",
			Tiers: []catalog.Tier{{ID: "t", Name: "Tier", PriceCents: 5000}},
			Sections: []catalog.Section{
				{ID: "s", Name: "Seated", Kind: "seated", Tier: "t", Rows: 1, SeatsPerRow: 50, Rank: 1},
				{ID: "ga", Name: "Standing", Kind: "standing", Tier: "t", Capacity: 50},
				{ID: "one", Name: "Last seat", Kind: "seated", Tier: "t", Rows: 1, SeatsPerRow: 1, Rank: 2},
				{ID: "row", Name: "Long row", Kind: "seated", Tier: "t", Rows: 1, SeatsPerRow: 100, Rank: 3},
			},
		}},
		Shows: []catalog.Show{{ID: "t-1", Venue: "v", Name: "Show", StartsAt: time.Date(2026, 3, 30, 21, 0, 0, 0, time.UTC)}},
	}
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func mustDB(tb testing.TB) *postgres.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.Start(tb), 60, testLogger(tb))
	if err != nil {
		tb.Fatalf("open db: %v", err)
	}
	tb.Cleanup(db.Close)
	if _, err := db.LoadCatalog(ctx, testCatalog()); err != nil {
		tb.Fatalf("load catalog: %v", err)
	}
	return db
}

func mustService(tb testing.TB, db *postgres.DB, sim payments.Provider, cfg inventory.Config) *inventory.Service {
	tb.Helper()
	return inventory.New(db, sim, cfg, testLogger(tb))
}

// checkInvariants runs the money-and-seats checks against the database:
// places add up to capacity per show, no seat belongs to two orders, every
// sold seat has a captured payment, every captured payment has sold seats,
// each fan account's ticket count matches its places, and holds agree with
// their seats.
func checkInvariants(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	for _, v := range invariantViolations(tb, db) {
		tb.Errorf("invariant broken: %s", v)
	}
}

// invariantViolations runs the queries of checkInvariants and returns one
// line per broken invariant.
func invariantViolations(tb testing.TB, db *postgres.DB) []string {
	tb.Helper()
	ctx := context.Background()
	queries := []struct {
		name, sql string
	}{
		{"places add up to capacity", `SELECT s.id FROM sales s WHERE s.capacity <> (SELECT count(*) FROM seats WHERE sale_id = s.id)`},
		{"sold seat without a captured payment", `SELECT st.id FROM seats st LEFT JOIN payments p ON p.hold_id = st.hold_id
			WHERE st.state = 'SOLD' AND (p.state IS NULL OR p.state <> 'captured')`},
		{"sold seat without a paid order", `SELECT st.id FROM seats st LEFT JOIN orders o ON o.hold_id = st.hold_id AND o.state = 'PAID'
			WHERE st.state = 'SOLD' AND o.id IS NULL`},
		{"refunded order still holding seats", `SELECT o.id FROM orders o JOIN seats st ON st.hold_id = o.hold_id WHERE o.state = 'REFUNDED'`},
		{"refunded order whose payment was not refunded", `SELECT o.id FROM orders o JOIN payments p ON p.id = o.payment_id
			WHERE o.state = 'REFUNDED' AND p.state <> 'refunded'`},
		{"captured payment without sold seats", `SELECT p.id FROM payments p JOIN holds h ON h.id = p.hold_id
			WHERE p.state = 'captured' AND (h.state <> 'SOLD' OR h.seat_count <> (SELECT count(*) FROM seats WHERE hold_id = h.id AND state = 'SOLD'))`},
		{"fan ticket count disagrees with paid orders and live holds", `SELECT f.fan FROM fan_tickets f WHERE f.tickets <>
			(SELECT COALESCE(sum(h.seat_count), 0) FROM holds h LEFT JOIN orders o ON o.hold_id = h.id
			 WHERE h.fan = f.fan AND h.sale_id = f.sale_id AND (h.state IN ('HELD', 'CHECKOUT') OR (h.state = 'SOLD' AND o.state = 'PAID')))`},
		{"seat state disagrees with its hold", `SELECT st.id FROM seats st JOIN holds h ON h.id = st.hold_id
			WHERE NOT ((st.state = 'HELD' AND h.state = 'HELD') OR (st.state = 'CHECKOUT' AND h.state = 'CHECKOUT') OR (st.state = 'SOLD' AND h.state = 'SOLD'))`},
		{"live hold with missing seats", `SELECT h.id FROM holds h LEFT JOIN orders o ON o.hold_id = h.id
			WHERE (h.state IN ('HELD', 'CHECKOUT') OR (h.state = 'SOLD' AND o.state = 'PAID'))
			AND h.seat_count <> (SELECT count(*) FROM seats WHERE hold_id = h.id)`},
		{"refund owed but not made", `SELECT id FROM payments WHERE state = 'refund_pending'`},
		{"hold without a fan account", `SELECT id FROM holds WHERE fan = ''`},
		{"live hold without a deadline", `SELECT h.id FROM holds h LEFT JOIN hold_deadlines d ON d.hold_id = h.id
			WHERE h.state IN ('HELD', 'CHECKOUT') AND d.hold_id IS NULL`},
		{"deadline later than its hold's expiry", `SELECT h.id FROM holds h JOIN hold_deadlines d ON d.hold_id = h.id
			WHERE h.state IN ('HELD', 'CHECKOUT') AND d.expires_at > h.expires_at`},
	}
	var out []string
	for _, q := range queries {
		rows, err := db.Pool.Query(ctx, q.sql)
		if err != nil {
			tb.Fatalf("invariant %q: %v", q.name, err)
		}
		var bad []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				tb.Fatalf("invariant %q: %v", q.name, err)
			}
			bad = append(bad, id)
		}
		rows.Close()
		if len(bad) > 0 {
			out = append(out, fmt.Sprintf("%s: %v", q.name, head(bad)))
		}
	}
	return out
}

func head(ids []string) string {
	if len(ids) > 5 {
		return fmt.Sprintf("%v and %d more", ids[:5], len(ids)-5)
	}
	return fmt.Sprint(ids)
}

// fakeClock is a settable clock for expiry tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
