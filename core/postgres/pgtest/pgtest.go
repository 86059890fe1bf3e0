// Package pgtest gives each test its own throwaway PostgreSQL database.
//
// By default the databases live in one cluster per test binary, which
// core/pglocal runs from a temporary directory on a free 127.0.0.1 port and
// which Main stops after the tests. When TAQUILLA_TEST_DATABASE_URL is set,
// the databases are created on that server instead. It must be PostgreSQL 13
// or later, and the URL's role must be allowed to create databases.
//
// Use it from the test binary's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSell(t *testing.T) {
//		url := pgtest.Start(t)
//		...
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/taquilla/taquilla/core/pglocal"
)

// EnvURL names the environment variable with the URL of an existing server
// to create test databases on. The URL should name a database that exists,
// such as postgres.
const EnvURL = "TAQUILLA_TEST_DATABASE_URL"

// Timeouts for the shared cluster and for each database statement.
const (
	clusterTimeout = 2 * time.Minute
	queryTimeout   = 30 * time.Second
)

// mainRunning is set by Main. Start refuses to start a cluster without it,
// because nothing else would stop the cluster when the tests end.
var mainRunning atomic.Bool

var shared struct {
	once sync.Once

	mu      sync.Mutex // guards the fields below
	cluster *pglocal.Cluster
	tmpDir  string
	err     error
}

// Main runs the tests, then stops the shared cluster and removes its
// directory, and exits with the tests' exit code. Call it from TestMain in
// every test binary that uses Start. It exits with 1 if the tests passed but
// the cleanup failed.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Start creates a database named t_<random> for the test and returns its
// URL. The database is dropped when the test ends, closing any connection
// still open to it. Without TAQUILLA_TEST_DATABASE_URL and without
// PostgreSQL binaries, Start skips the test, or fails it when CI=true.
func Start(tb testing.TB) string {
	tb.Helper()
	if adminURL := os.Getenv(EnvURL); adminURL != "" {
		return startExternal(tb, adminURL)
	}

	c := sharedCluster(tb)
	name := databaseName()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	if err := c.CreateDatabase(ctx, name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
		defer cancel()
		if err := c.DropDatabase(ctx, name); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return c.URL(name)
}

// sharedCluster starts the cluster on first use and returns it.
func sharedCluster(tb testing.TB) *pglocal.Cluster {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatal("pgtest: call pgtest.Main(m) from TestMain, so that the cluster is stopped after the tests")
	}
	shared.once.Do(startShared)

	shared.mu.Lock()
	defer shared.mu.Unlock()
	if errors.Is(shared.err, pglocal.ErrNoBinaries) && os.Getenv("CI") != "true" {
		tb.Skipf("pgtest: %v", shared.err)
	}
	if shared.err != nil {
		tb.Fatalf("pgtest: %v", shared.err)
	}
	return shared.cluster
}

func startShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.cluster, shared.err = startCluster()
}

// startCluster starts a cluster in a new temporary directory.
// shared.mu must be held.
func startCluster() (*pglocal.Cluster, error) {
	binDir, err := pglocal.FindBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "taquilla-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	shared.tmpDir = dir
	// As root the server runs as user postgres, which must be able to reach
	// the data directory inside this 0700 directory.
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("chmod cluster directory: %w", err)
		}
	}

	// The cluster outlives any single test, so it cannot log to one test's
	// output. Only problems are worth showing next to the test results.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	return pglocal.Start(ctx, pglocal.Options{
		Dir:    filepath.Join(dir, "data"),
		BinDir: binDir,
		Log:    log.With("component", "core.postgres.pgtest"),
	})
}

// stopShared stops the shared cluster, if it was started, and removes its
// directory.
func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()

	var errs []error
	if shared.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		defer cancel()
		errs = append(errs, shared.cluster.Stop(ctx))
		shared.cluster = nil
	}
	if shared.tmpDir != "" {
		if err := os.RemoveAll(shared.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
		}
		shared.tmpDir = ""
	}
	return errors.Join(errs...)
}

// startExternal creates the test database on the server at adminURL.
func startExternal(tb testing.TB, adminURL string) string {
	tb.Helper()
	name := databaseName()
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}

	if err := execExternal(adminURL, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database %s on %s server: %v", name, EnvURL, err)
	}
	tb.Cleanup(func() {
		// CockroachDB has no WITH (FORCE); it drops a database that
		// sessions still use, and needs CASCADE to drop its tables.
		drop := "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
		if isCockroach(adminURL) {
			drop = "DROP DATABASE IF EXISTS " + name + " CASCADE"
		}
		if err := execExternal(adminURL, drop); err != nil {
			tb.Errorf("pgtest: drop database %s on %s server: %v", name, EnvURL, err)
		}
	})
	return dbURL
}

// isCockroach reports whether the server at adminURL is CockroachDB.
func isCockroach(adminURL string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return false
	}
	return strings.Contains(version, "CockroachDB")
}

func execExternal(adminURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// withDatabase returns connString with its database replaced by name. It
// accepts both URL and keyword/value connection strings. In the latter a
// later keyword overrides an earlier one.
func withDatabase(connString, name string) (string, error) {
	if !strings.HasPrefix(connString, "postgres://") && !strings.HasPrefix(connString, "postgresql://") {
		return connString + " dbname=" + name, nil
	}
	u, err := url.Parse(connString)
	if err != nil {
		// url.Parse errors quote the input, which may contain a password.
		return "", errors.New("invalid connection URL")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// databaseName returns t_ followed by 16 random lowercase letters and
// digits (80 bits), which needs no quoting in SQL.
func databaseName() string {
	return "t_" + strings.ToLower(rand.Text()[:16])
}
