package postgres

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/core/postgres/pgtest"
)

// TestGroup_MemberBreakingARuleRunsAlone queues six transactions behind a
// busy lane so that they run as one group. One of them breaks a check. It
// must fail on its own, with the check's error, while the other five
// commit, and commit together: their rows share one transaction id.
func TestGroup_MemberBreakingARuleRunsAlone(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := Open(ctx, pgtest.Start(t), 8, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE grouped (id INT PRIMARY KEY, v INT NOT NULL CHECK (v >= 0))`); err != nil {
		t.Fatal(err)
	}
	db.SetGroupLanes(1)

	// The lane is busy with a slow transaction while the others queue.
	busy := make(chan error, 1)
	go func() {
		busy <- db.groupTx(ctx, func(b *pgx.Batch) { b.Queue(`SELECT pg_sleep(0.3)`) },
			func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
	}()
	time.Sleep(100 * time.Millisecond)
	values := []int{1, 2, -3, 4, 5, 6} // -3 breaks the check
	errs := make([]error, len(values))
	var wg sync.WaitGroup
	for i, v := range values {
		wg.Go(func() {
			errs[i] = db.groupTx(ctx, func(b *pgx.Batch) {
				b.Queue(`INSERT INTO grouped (id, v) VALUES ($1, $2)`, i+1, v)
			}, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
		})
	}
	wg.Wait()
	if err := <-busy; err != nil {
		t.Fatalf("slow transaction: %v", err)
	}

	for i, err := range errs {
		switch {
		case values[i] < 0 && constraint(err) != "grouped_v_check":
			t.Errorf("member %d (v=%d) = %v, want the check's error", i+1, values[i], err)
		case values[i] >= 0 && err != nil:
			t.Errorf("member %d (v=%d) = %v, want committed", i+1, values[i], err)
		}
	}
	rows, err := db.Pool.Query(ctx, `SELECT id, xmin::TEXT FROM grouped ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	xids := map[string][]int{}
	n := 0
	for rows.Next() {
		var id int
		var xid string
		if err := rows.Scan(&id, &xid); err != nil {
			t.Fatal(err)
		}
		xids[xid] = append(xids[xid], id)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 5 || len(xids) != 1 {
		t.Errorf("rows by transaction = %v, want ids 1, 2, 4, 5 and 6 from one transaction", xids)
	}
}
