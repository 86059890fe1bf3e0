package pglocal_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/core/pglocal"
)

func TestStart_reusesDataDir(t *testing.T) {
	mustHavePostgres(t)
	ctx := context.Background()
	dataDir := filepath.Join(mustTempDir(t), "data")

	// First run: initdb, then write a row that the second run must find.
	c := mustStart(t, pglocal.Options{Dir: dataDir, Log: testLogger(t)})
	if err := c.CreateDatabase(ctx, "kept"); err != nil {
		t.Fatalf("CreateDatabase(kept) = %v", err)
	}
	if err := c.CreateDatabase(ctx, "kept"); err != nil {
		t.Errorf("CreateDatabase(kept) again = %v, want nil", err)
	}
	conn := mustConnect(t, c.URL("kept"))
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	mustClose(t, conn)
	mustStop(t, c, dataDir)
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}

	// Second run reuses the data directory on another free port.
	c = mustStart(t, pglocal.Options{Dir: dataDir, Log: testLogger(t)})
	conn = mustConnect(t, c.URL("kept"))
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil {
		t.Fatalf("select after restart: %v", err)
	}
	if x != 42 {
		t.Errorf("x after restart = %d, want 42", x)
	}
	for setting, want := range map[string]string{
		"default_transaction_isolation": "serializable",
		"listen_addresses":              "127.0.0.1",
		"max_connections":               "200",
		"port":                          strconv.Itoa(c.Port()),
	} {
		if got := mustShow(t, conn, setting); got != want {
			t.Errorf("SHOW %s = %q, want %q", setting, got, want)
		}
	}
	mustClose(t, conn)

	if err := c.DropDatabase(ctx, "kept"); err != nil {
		t.Errorf("DropDatabase(kept) = %v", err)
	}
	if err := c.DropDatabase(ctx, "kept"); err != nil {
		t.Errorf("DropDatabase(kept) again = %v, want nil", err)
	}
	mustStop(t, c, dataDir)
}

func TestStart_stopsLeftoverServer(t *testing.T) {
	mustHavePostgres(t)
	ctx := context.Background()
	dataDir := filepath.Join(mustTempDir(t), "data")

	// The first cluster is never stopped, like one left by a crashed run.
	first := mustStart(t, pglocal.Options{Dir: dataDir, Log: testLogger(t)})
	second := mustStart(t, pglocal.Options{Dir: dataDir, Log: testLogger(t)})
	mustClose(t, mustConnect(t, second.URL("postgres")))

	if err := first.Stop(ctx); err != nil {
		t.Errorf("Stop of replaced cluster = %v, want nil", err)
	}
	mustClose(t, mustConnect(t, second.URL("postgres")))
	mustStop(t, second, dataDir)
}

func TestStart_portInUse(t *testing.T) {
	mustHavePostgres(t)
	dataDir := filepath.Join(mustTempDir(t), "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// An explicit port is not retried, and the error carries the server log.
	c, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dataDir, Port: port, Log: testLogger(t)})
	if err == nil {
		c.Stop(context.Background())
		t.Fatalf("Start on taken port %d = nil error, want an error", port)
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("Start error = %q, want it to quote the server log", err)
	}
	if pids := processesInDir(t, dataDir); len(pids) > 0 {
		t.Errorf("processes running in %s after failed Start: %v", dataDir, pids)
	}
}

func TestStart_rootChecksDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs the server as another user")
	}
	mustHavePostgres(t)

	t.Run("parent_not_searchable", func(t *testing.T) {
		parent := mustTempDir(t)
		if err := os.Chmod(parent, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := pglocal.Start(context.Background(), pglocal.Options{Dir: filepath.Join(parent, "a", "data")})
		if err == nil || !strings.Contains(err.Error(), "chmod o+x "+parent) {
			t.Errorf("Start under a 0700 directory = %v, want an error that suggests chmod o+x %s", err, parent)
		}
		if _, err := os.Stat(filepath.Join(parent, "a")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat parent after failed Start = %v, want not exist", err)
		}
	})
	t.Run("data_dir_owned_by_root", func(t *testing.T) {
		dataDir := filepath.Join(mustTempDir(t), "data")
		if err := os.Mkdir(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := pglocal.Start(context.Background(), pglocal.Options{Dir: dataDir})
		if err == nil || !strings.Contains(err.Error(), "chown -R postgres: "+dataDir) {
			t.Errorf("Start in a root-owned directory = %v, want an error that suggests chown", err)
		}
	})
}

func TestStart_invalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts pglocal.Options
	}{
		{"missing_dir", pglocal.Options{}},
		{"negative_port", pglocal.Options{Dir: t.TempDir(), Port: -1}},
		{"port_too_big", pglocal.Options{Dir: t.TempDir(), Port: 65536}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := pglocal.Start(context.Background(), tt.opts); err == nil {
				c.Stop(context.Background())
				t.Errorf("Start(%+v) = nil error, want an error", tt.opts)
			}
		})
	}
}

// mustHavePostgres skips the test when no PostgreSQL binaries are installed,
// unless CI=true, where it fails instead.
func mustHavePostgres(t *testing.T) {
	t.Helper()
	_, err := pglocal.FindBinDir()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// mustTempDir returns a new directory that the server user can search, which
// t.TempDir is not when running as root because its parents have mode 0700.
func mustTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pglocal-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove temp dir: %v", err)
		}
	})
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustStart(t *testing.T, opts pglocal.Options) *pglocal.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pglocal.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Stop is safe to call twice, so the cleanup also covers failed tests.
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop in cleanup: %v", err)
		}
	})
	return c
}

// mustStop stops c and checks that no process runs in dataDir any more: the
// postmaster and its backends all use the data directory as their working
// directory.
func mustStop(t *testing.T, c *pglocal.Cluster, dataDir string) {
	t.Helper()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if pids := processesInDir(t, dataDir); len(pids) > 0 {
		t.Errorf("processes still running in %s after Stop: %v", dataDir, pids)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat postmaster.pid after Stop = %v, want not exist", err)
	}
}

func processesInDir(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("cannot list processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// Exited processes and zombies have no working directory.
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	return conn
}

func mustClose(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	if err := conn.Close(context.Background()); err != nil {
		t.Errorf("close connection: %v", err)
	}
}

func mustShow(t *testing.T, conn *pgx.Conn, setting string) string {
	t.Helper()
	var value string
	if err := conn.QueryRow(context.Background(), "SHOW "+setting).Scan(&value); err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return value
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
