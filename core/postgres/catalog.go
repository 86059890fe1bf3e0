package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// LoadCatalog creates every show of c that the database does not have yet,
// with its tiers, sections and one row per seat. Shows that exist are left
// as they are, so loading again after a restart changes nothing. It returns
// the number of shows created.
func (db *DB) LoadCatalog(ctx context.Context, c *catalog.Catalog) (int, error) {
	created := 0
	for _, show := range c.Shows {
		v := c.Venue(show.Venue)
		var made bool
		err := db.InTx(ctx, func(tx pgx.Tx) error {
			made = false
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM sales WHERE id = $1`, show.ID).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			made = true
			return insertShow(ctx, tx, c.Tour, show, v)
		})
		if err != nil {
			return created, fmt.Errorf("load show %s: %w", show.ID, err)
		}
		if made {
			created++
			db.log.Info("show loaded", logkey.SaleID, show.ID, logkey.Count, v.SellableCapacity())
		}
	}
	if created > 0 {
		// Fresh statistics tell the planner that a show has thousands of
		// seats before autovacuum gets to them. Without them it planned a
		// scan of a whole show for a lookup of a few seats.
		for _, table := range []string{"seats", "sections"} {
			if _, err := db.Pool.Exec(ctx, `ANALYZE `+table); err != nil {
				return created, fmt.Errorf("analyze %s: %w", table, err)
			}
		}
	}
	return created, nil
}

func insertShow(ctx context.Context, tx pgx.Tx, tour string, show catalog.Show, v *catalog.Venue) error {
	// Blocked places (production holds, other channels) get no row: the
	// sale's capacity is what can be sold.
	_, err := tx.Exec(ctx, `INSERT INTO sales (id, tour, name, venue, city, starts_at, capacity) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		show.ID, tour, show.Name, v.Name, v.City, show.StartsAt, v.SellableCapacity())
	if err != nil {
		return fmt.Errorf("insert sale: %w", err)
	}
	prices := map[string]int64{}
	for _, t := range v.Tiers {
		prices[t.ID] = t.PriceCents
		if _, err := tx.Exec(ctx, `INSERT INTO tiers (sale_id, id, name, price_cents) VALUES ($1, $2, $3, $4)`,
			show.ID, t.ID, t.Name, t.PriceCents); err != nil {
			return fmt.Errorf("insert tier %s: %w", t.ID, err)
		}
	}
	var rows [][]any
	for _, s := range v.Sections {
		if _, err := tx.Exec(ctx, `INSERT INTO sections (sale_id, id, name, kind, tier_id, capacity, rank) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			show.ID, s.ID, s.Name, s.Kind, s.Tier, s.SellablePlaces(), s.Rank); err != nil {
			return fmt.Errorf("insert section %s: %w", s.ID, err)
		}
		price := prices[s.Tier]
		if s.Kind == waitroom.SectionStanding {
			for n := 1; n <= s.SellablePlaces(); n++ {
				rows = append(rows, []any{show.ID, fmt.Sprintf("%s-%05d", s.ID, n), s.ID, "", 0, n, price})
			}
			continue
		}
		for r := 1; r <= s.Rows; r++ {
			label := strconv.Itoa(r)
			for n := 1; n <= s.SeatsPerRow; n++ {
				if s.IsBlocked(r, n) {
					continue
				}
				rows = append(rows, []any{show.ID, fmt.Sprintf("%s-%s-%d", s.ID, label, n), s.ID, label, r, n, price})
			}
		}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"seats"},
		[]string{"sale_id", "id", "section_id", "row_label", "row_no", "number", "price_cents"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy seats: %w", err)
	}
	return nil
}
