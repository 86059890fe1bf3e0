package inventory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/taquilla/taquilla/core/catalog"
	"github.com/taquilla/taquilla/core/inventory"
	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/core/postgres"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// mustLuxShow opens a database holding one LUX Tour show (Madrid, 17,500
// places) and returns it with the show's sale id.
func mustLuxShow(b *testing.B) (*postgres.DB, string) {
	b.Helper()
	ctx := context.Background()
	lux, err := catalog.Builtin("lux")
	if err != nil {
		b.Fatal(err)
	}
	lux.Shows = lux.Shows[:1]
	db, err := postgres.Open(ctx, pgtest.Start(b), 40, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	if _, err := db.LoadCatalog(ctx, lux); err != nil {
		b.Fatal(err)
	}
	return db, lux.Shows[0].ID
}

// BenchmarkService_Sell runs the whole state machine (best-available hold
// of 1 to 4 places, checkout, payment) from concurrent buyers and reports
// sales, places sold per second, and transaction reruns and real collisions
// per sale.
func BenchmarkService_Sell(b *testing.B) {
	db, sale := mustLuxShow(b)
	svc := mustService(b, db, payments.NewSim(payments.SimConfig{}), inventory.DefaultConfig())
	m, err := svc.FindSeatMap(context.Background(), sale)
	if err != nil {
		b.Fatal(err)
	}
	var sections []string
	for _, s := range m.Sections {
		sections = append(sections, s.ID)
	}
	_, retries0 := db.TxStats()
	collisions0 := db.Collisions()
	var seats, sales, soldOut atomic.Int64
	var buyer atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(buyer.Add(1)), 3))
		ctx := context.Background()
		for pb.Next() {
			session := fmt.Sprintf("b-%d", buyer.Add(1))
			qty := 1 + rng.IntN(4)
			section := sections[rng.IntN(len(sections))]
			o := buy(ctx, svc, session, waitroom.HoldRequest{SaleID: sale, Section: section, Quantity: qty})
			switch {
			case o.err == nil:
				sales.Add(1)
				seats.Add(int64(len(o.order.Seats)))
			case waitroom.ErrorCode(o.err) == waitroom.ESOLDOUT:
				soldOut.Add(1)
			default:
				b.Errorf("buy: %v", o.err)
			}
		}
	})
	elapsed := time.Since(start).Seconds()
	_, retries := db.TxStats()
	n := float64(max(sales.Load(), 1))
	b.ReportMetric(float64(sales.Load())/elapsed, "sales/s")
	b.ReportMetric(float64(seats.Load())/elapsed, "seats/s")
	b.ReportMetric(float64(retries-retries0)/n, "retries/sale")
	b.ReportMetric(float64(db.Collisions()-collisions0)/n, "collisions/sale")
	b.ReportMetric(float64(soldOut.Load()), "sold-out")
	reportHOT(b, db)
}

// BenchmarkRawUpdate is the ceiling that BenchmarkService_Sell compares
// with: one autocommitted single-row UPDATE per place, SERIALIZABLE like
// every write of the store, from the same number of concurrent clients on
// the same database and table.
func BenchmarkRawUpdate(b *testing.B) {
	db, sale := mustLuxShow(b)
	ctx := context.Background()
	cfg := db.Pool.Config()
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "serializable"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	rows, err := db.Pool.Query(ctx, `SELECT id FROM seats WHERE sale_id = $1 ORDER BY id`, sale)
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var next, retries atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)-1) % len(ids)
			for {
				_, err := pool.Exec(ctx, `UPDATE seats SET state = 'HELD', hold_id = $3 WHERE sale_id = $1 AND id = $2`, sale, ids[i], "raw")
				if postgres.SQLState(err) == "40001" {
					retries.Add(1)
					continue
				}
				if err != nil {
					b.Errorf("update: %v", err)
					return
				}
				break
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "updates/s")
	b.ReportMetric(float64(retries.Load())/float64(b.N), "retries/update")
	reportHOT(b, db)
}

// reportHOT reports the share of seat updates that were heap-only, which
// write no index page and so cause no false serialization conflicts.
func reportHOT(b *testing.B, db *postgres.DB) {
	var upd, hot float64
	err := db.Pool.QueryRow(context.Background(), `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'seats'`).Scan(&upd, &hot)
	if err == nil && upd > 0 {
		b.ReportMetric(100*hot/upd, "%hot")
	}
}
