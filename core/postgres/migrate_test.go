package postgres

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taquilla/taquilla/core/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestMigrate_FanAccounts applies the migrations from before fan accounts,
// writes a live hold and its ticket count keyed by session as the old code
// did, and applies the rest. The count and the hold move to the session's
// account, and releasing the hold gives its places back to that count.
func TestMigrate_FanAccounts(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	db := &DB{Pool: pool, log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := db.migrate(ctx, 2); err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}

	now := time.Now()
	old := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO seats (sale_id, id, section_id, row_no, number, price_cents, state, hold_id)
			VALUES ('t-1', 'ga-1', 'ga', 0, 1, 5000, 'HELD', 'h_old'), ('t-1', 'ga-2', 'ga', 0, 2, 5000, 'HELD', 'h_old')`, nil},
		{`INSERT INTO holds (id, sale_id, session, idem_key, state, total_cents, seat_count, seat_ids, expires_at, created_at, updated_at)
			VALUES ('h_old', 't-1', 'old-session', 'k', 'HELD', 10000, 2, ARRAY['ga-1', 'ga-2'], $1, $2, $2)`,
			[]any{now.Add(10 * time.Minute), now}},
		{`INSERT INTO fan_tickets (sale_id, session, tickets) VALUES ('t-1', 'old-session', 2)`, nil},
	}
	for _, row := range old {
		if _, err := pool.Exec(ctx, row.sql, row.args...); err != nil {
			t.Fatalf("write old rows: %v", err)
		}
	}

	if err := db.migrate(ctx, math.MaxInt); err != nil {
		t.Fatalf("migrate to the latest version: %v", err)
	}
	var fan string
	if err := pool.QueryRow(ctx, `SELECT fan FROM holds WHERE id = 'h_old'`).Scan(&fan); err != nil {
		t.Fatalf("read fan of old hold: %v", err)
	}
	if fan != "session:old-session" {
		t.Errorf("old hold's fan account = %q, want %q", fan, "session:old-session")
	}
	if got := tickets(t, pool, "session:old-session"); got != 2 {
		t.Errorf("ticket count of session:old-session after the migration = %d, want 2", got)
	}
	if got := tickets(t, pool, "old-session"); got != -1 {
		t.Errorf("a count keyed by the bare session is still there, with %d tickets", got)
	}

	if _, err := db.ReleaseHold(ctx, "h_old", "old-session", now); err != nil {
		t.Fatalf("release old hold: %v", err)
	}
	if got := tickets(t, pool, "session:old-session"); got != 0 {
		t.Errorf("ticket count of session:old-session after the release = %d, want 0", got)
	}
}

// tickets returns the ticket count of a fan account in sale t-1, or -1 when
// it has no count row.
func tickets(t *testing.T, pool *pgxpool.Pool, fan string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT COALESCE((SELECT tickets FROM fan_tickets WHERE sale_id = 't-1' AND fan = $1), -1)`, fan).Scan(&n)
	if err != nil {
		t.Fatalf("read ticket count of %s: %v", fan, err)
	}
	return n
}
