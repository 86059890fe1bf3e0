package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// FindSales lists every on-sale with its count of available places.
func (db *DB) FindSales(ctx context.Context) ([]waitroom.Sale, error) {
	var out []waitroom.Sale
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT s.id, s.tour, s.name, s.venue, s.city, s.starts_at, s.capacity,
			(SELECT count(*) FROM seats WHERE sale_id = s.id AND state = 'AVAILABLE')
			FROM sales s ORDER BY s.starts_at, s.id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (waitroom.Sale, error) {
			var s waitroom.Sale
			err := r.Scan(&s.ID, &s.Tour, &s.Name, &s.Venue, &s.City, &s.StartsAt, &s.Capacity, &s.Available)
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find sales: %w", err)
	}
	return out, nil
}

// FindSeatMap returns a show's tiers and sections with availability.
func (db *DB) FindSeatMap(ctx context.Context, saleID string) (*waitroom.SeatMap, error) {
	m := &waitroom.SeatMap{}
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id, tour, name, venue, city, starts_at, capacity FROM sales WHERE id = $1`, saleID).
			Scan(&m.Sale.ID, &m.Sale.Tour, &m.Sale.Name, &m.Sale.Venue, &m.Sale.City, &m.Sale.StartsAt, &m.Sale.Capacity)
		if errors.Is(err, pgx.ErrNoRows) {
			return waitroom.Errorf(waitroom.ENOTFOUND, "no sale %q", saleID)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, name, price_cents FROM tiers WHERE sale_id = $1 ORDER BY price_cents DESC`, saleID)
		if err != nil {
			return err
		}
		if m.Tiers, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (waitroom.Tier, error) {
			var t waitroom.Tier
			err := r.Scan(&t.ID, &t.Name, &t.PriceCents)
			return t, err
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT c.id, c.name, c.kind, c.tier_id, c.capacity, c.rank,
			(SELECT count(*) FROM seats s WHERE s.sale_id = c.sale_id AND s.section_id = c.id AND s.state = 'AVAILABLE')
			FROM sections c WHERE c.sale_id = $1 ORDER BY c.rank, c.id`, saleID)
		if err != nil {
			return err
		}
		m.Sections, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (waitroom.Section, error) {
			var s waitroom.Section
			err := r.Scan(&s.ID, &s.Name, &s.Kind, &s.Tier, &s.Capacity, &s.Rank, &s.Available)
			return s, err
		})
		for _, s := range m.Sections {
			m.Sale.Available += s.Available
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find seat map of %s: %w", saleID, err)
	}
	return m, nil
}

// Stock counts a sale's places by seat state.
type Stock struct {
	Available, Held, Checkout, Sold int
}

// Total returns the number of places counted.
func (s Stock) Total() int { return s.Available + s.Held + s.Checkout + s.Sold }

// FindStock counts a sale's places by state.
func (db *DB) FindStock(ctx context.Context, saleID string) (Stock, error) {
	var st Stock
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT state, count(*) FROM seats WHERE sale_id = $1 GROUP BY state`, saleID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			switch state {
			case waitroom.SeatAvailable:
				st.Available = n
			case waitroom.SeatHeld:
				st.Held = n
			case waitroom.SeatCheckout:
				st.Checkout = n
			case waitroom.SeatSold:
				st.Sold = n
			}
		}
		return rows.Err()
	})
	if err != nil {
		return Stock{}, fmt.Errorf("find stock of %s: %w", saleID, err)
	}
	return st, nil
}
