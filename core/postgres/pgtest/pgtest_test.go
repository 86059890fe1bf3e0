package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/taquilla/taquilla/core/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var databaseNamePattern = regexp.MustCompile(`^t_[a-z0-9]+$`)

func TestStart(t *testing.T) {
	urls := []string{pgtest.Start(t), pgtest.Start(t)}

	var names []string
	for _, url := range urls {
		conn := mustConnect(t, url)
		name := mustQueryString(t, conn, "SELECT current_database()")
		if !databaseNamePattern.MatchString(name) {
			t.Errorf("database name = %q, want it to match %s", name, databaseNamePattern)
		}
		names = append(names, name)

		// An external server keeps its own settings.
		if os.Getenv(pgtest.EnvURL) == "" {
			got := mustQueryString(t, conn, "SHOW default_transaction_isolation")
			if got != "serializable" {
				t.Errorf("default_transaction_isolation = %q, want serializable", got)
			}
		}
	}
	if names[0] == names[1] {
		t.Errorf("both databases are named %q, want distinct names", names[0])
	}
}

func TestStart_dropsDatabaseAfterTest(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		// Cleanups run last-in first-out, so this one closes the connection
		// only after Start's cleanup dropped the database under it.
		var conn *pgx.Conn
		t.Cleanup(func() {
			if conn != nil {
				conn.Close(context.Background())
			}
		})
		url := pgtest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		conn, err = pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		name = mustQueryString(t, conn, "SELECT current_database()")
	})
	if name == "" {
		t.Fatal("inner test did not report its database name")
	}

	conn := mustConnect(t, pgtest.Start(t))
	var count int
	err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&count)
	if err != nil {
		t.Fatalf("count databases: %v", err)
	}
	if count != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestStart_parallel(t *testing.T) {
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := mustConnect(t, pgtest.Start(t))
			if got := mustQueryString(t, conn, "SELECT 'ok'"); got != "ok" {
				t.Errorf("SELECT 'ok' = %q", got)
			}
		})
	}
}

// mustConnect connects to url and closes the connection when the test ends.
func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func mustQueryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}
