// Package postgres is the pgx adapter of the core: the connection pool,
// embedded schema migrations, the serializable transaction helper, and the
// inventory store's SQL. Its SQL is kept valid on CockroachDB and PostgreSQL.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxAttempts bounds the runs of one transaction; past it the caller gets
// EUNAVAILABLE and may retry the request with the same idempotency key.
const maxAttempts = 30

// DB is a connection pool with the transaction helpers.
type DB struct {
	Pool *pgxpool.Pool
	log  *slog.Logger

	commits    atomic.Int64 // transactions committed through InTx and pipeTx
	retries    atomic.Int64 // reruns after serialization failures or deadlocks
	txNanos    atomic.Int64 // time spent in committed InTx and pipeTx calls, reruns included
	collisions atomic.Int64 // holds whose chosen seats another buyer took first

	knobs TestingKnobs // zero outside tests; see SetTestingKnobs

	sections  sectionCache  // kind, capacity and seat view of each section, filled on first use
	checkouts checkoutCache // checkouts started here, with their payment
	group     grouper       // runs groupTx transactions together
}

// Open connects to url, checks the connection and applies migrations.
func Open(ctx context.Context, url string, maxConns int, log *slog.Logger) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	// Statements outside InTx are reads and the few writes that decide
	// nothing (see readCommitted): they run as single READ COMMITTED
	// statements, one round trip each, whatever the server's default.
	// Every transaction that decides runs in InTx, which asks for
	// SERIALIZABLE explicitly. CockroachDB runs them as SERIALIZABLE unless
	// its read committed isolation is enabled.
	cfg.ConnConfig.RuntimeParams["default_transaction_isolation"] = "read committed"
	cfg.AfterConnect = preferGenericPlans
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := &DB{Pool: pool, log: log.With(logkey.Component, "core.postgres"), group: grouper{lanes: groupLanes(int(cfg.MaxConns))}}
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := db.migrate(ctx, math.MaxInt); err != nil {
		pool.Close()
		return nil, err
	}
	if err := db.tune(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// preferGenericPlans makes PostgreSQL plan each prepared statement once.
// By default it plans a statement with an array parameter (id = ANY($2))
// again at every execution, and a pg_stat_statements profile of the sale
// benchmark put that planning at a fifth of the server's statement time.
// Every statement of the store reads or writes by key, so the generic plan
// is the plan. CockroachDB, which reports crdb_version at connection,
// keeps its own plan cache and is left alone.
func preferGenericPlans(ctx context.Context, conn *pgx.Conn) error {
	if conn.PgConn().ParameterStatus("crdb_version") != "" {
		return nil
	}
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		return fmt.Errorf("set plan cache mode: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// TxStats returns the number of committed transactions and of reruns.
func (db *DB) TxStats() (commits, retries int64) {
	return db.commits.Load(), db.retries.Load()
}

// TxTime returns the total time of committed transactions, reruns and
// backoff included.
func (db *DB) TxTime() time.Duration { return time.Duration(db.txNanos.Load()) }

// Collisions returns how many best-available choices had to be made again
// because another buyer took a chosen seat first: the real collisions.
func (db *DB) Collisions() int64 { return db.collisions.Load() }

// migrate applies the embedded migrations numbered up to upTo that the
// database has not applied yet, in order, each in its own transaction.
func (db *DB) migrate(ctx context.Context, upTo int) error {
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number: %w", base, err)
		}
		if version > upTo {
			break
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", base, err)
		}
		err = db.InTx(ctx, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(string(body)) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("statement %.60q: %w", stmt, err)
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", base, err)
		}
	}
	return nil
}

// tune applies storage settings that only PostgreSQL has. A fill factor
// below 100 leaves room on each heap page, so a seat's state change stays a
// heap-only update that writes no index page. CockroachDB has no such
// setting and needs none.
func (db *DB) tune(ctx context.Context) error {
	var version string
	if err := db.Pool.QueryRow(ctx, `SELECT version()`).Scan(&version); err != nil {
		return fmt.Errorf("read server version: %w", err)
	}
	if strings.Contains(version, "CockroachDB") {
		return nil
	}
	for _, table := range []string{"seats", "holds", "payments", "fan_tickets"} {
		if _, err := db.Pool.Exec(ctx, `ALTER TABLE `+table+` SET (fillfactor = 70)`); err != nil {
			return fmt.Errorf("set %s fill factor: %w", table, err)
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends; migrations
// hold no semicolons inside literals. CockroachDB runs one statement per Exec
// inside explicit transactions more predictably than a batch.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// InTx runs fn in a SERIALIZABLE transaction and commits it. When fn or
// COMMIT fails with a serialization failure (40001) or a deadlock (40P01),
// the whole transaction runs again from BEGIN after a capped, jittered
// backoff, up to maxAttempts runs. fn must have no effect outside the
// database, because it may run several times.
//
// A COMMIT that fails without a reply from the server (the connection broke)
// returns waitroom.ErrCommitUnknown: the transaction may or may not have
// committed, and only an idempotent retry can tell.
func (db *DB) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.retry(ctx, func(ctx context.Context) error { return db.runOnce(ctx, fn) })
}

// retry runs once until it succeeds, fails with an error other than a
// serialization failure or deadlock, or has run maxAttempts times, with a
// jittered backoff before each rerun. It counts commits, reruns and time.
func (db *DB) retry(ctx context.Context, once func(ctx context.Context) error) error {
	start := time.Now()
	attempt := 0
	// crdb.ExecuteCtx reruns the function on SQLSTATE 40001 (deadlocks are
	// translated to it by retryable). Unlike crdb.ExecuteTx it does not use
	// savepoints, so an error at COMMIT reaches it and is retried too.
	err := crdb.ExecuteCtx(crdb.WithMaxRetries(ctx, maxAttempts-1), func(ctx context.Context, _ ...any) error {
		if attempt > 0 {
			db.retries.Add(1)
			db.log.Debug("transaction retried", logkey.Attempt, attempt)
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return err
			}
		}
		attempt++
		return once(ctx)
	})
	var maxErr *crdb.MaxRetriesExceededError
	if errors.As(err, &maxErr) {
		db.log.Warn("transaction retries exhausted", logkey.Attempt, attempt, logkey.Err, err)
		return &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "the store is busy; retry the request"}
	}
	if err == nil {
		db.commits.Add(1)
		db.txNanos.Add(int64(time.Since(start)))
	}
	return err
}

func (db *DB) runOnce(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return retryable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return retryable(fmt.Errorf("commit: %w", err))
		}
		db.log.Error("commit outcome unknown", logkey.Err, err)
		return fmt.Errorf("commit: %w: %w", waitroom.ErrCommitUnknown, err)
	}
	return nil
}

// ReadTx runs fn in a READ COMMITTED, read-only transaction. Use it for
// counts and listings that need no serializable guarantee: under
// SERIALIZABLE, PostgreSQL would keep predicate locks for them that make
// concurrent buyers abort. CockroachDB may run it as SERIALIZABLE, which is
// correct but costlier.
func (db *DB) ReadTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadOnly}, fn)
}

// readCommitted runs fn in a READ COMMITTED read-write transaction, for the
// few writes that need no serializable guarantee: they decide nothing by
// themselves, and keeping them out of PostgreSQL's conflict tracking spares
// concurrent buyers false aborts. Callers say why each use is safe.
func (db *DB) readCommitted(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// querier is the interface the read helpers use: a transaction, or the
// pool for single READ COMMITTED statements outside any transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// execReadCommitted runs one statement on its own, in READ COMMITTED (the
// pool's default): one round trip, with no BEGIN and COMMIT. The same
// rules as readCommitted apply.
func (db *DB) execReadCommitted(ctx context.Context, sql string, args ...any) error {
	_, err := db.Pool.Exec(ctx, sql, args...)
	return err
}

// deadlockError presents a deadlock as a serialization failure, so the
// retry loop reruns the transaction. The original error stays in the chain.
type deadlockError struct{ err error }

func (e deadlockError) Error() string    { return e.err.Error() }
func (e deadlockError) Unwrap() error    { return e.err }
func (e deadlockError) SQLState() string { return "40001" }

func retryable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
		return deadlockError{err: err}
	}
	return err
}

// backoff returns the wait before rerun attempt n: exponential from 2 ms,
// capped at 200 ms, with full jitter so buyers who collided spread out.
func backoff(n int) time.Duration {
	d := 2 * time.Millisecond << min(n, 7)
	d = min(d, 200*time.Millisecond)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// constraint returns the name of the constraint that err violated, or "".
func constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// SQLState returns the SQLSTATE code of err, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
