package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// then is a statement sent after a pipelined transaction's COMMIT, in the
// same round trip. It runs in its own implicit READ COMMITTED transaction,
// only when the transaction committed, and its failure does not undo the
// transaction.
type then struct {
	queue func(b *pgx.Batch)
	// read reads the statement's result; its error is kept in err.
	read func(br pgx.BatchResults) error
	err  error
}

// pipeTx runs one SERIALIZABLE transaction as a single pipelined batch:
// BEGIN, the statements that queue adds, and COMMIT reach the server in one
// round trip, where InTx needs one for BEGIN, one per step and one for
// COMMIT. Round trips, not statements, are most of what a sale costs on a
// small machine (bench/RESULTS.md). Serialization failures and deadlocks,
// at any statement or at COMMIT, rerun the whole batch like InTx does.
//
// COMMIT goes with the statements, so the transaction commits whenever
// every statement succeeds. A rule that must stop it has to fail in SQL: a
// constraint, or a NOT NULL column filled from a subquery that finds no
// row. read must only read the results of the queued statements, in order;
// it cannot veto the commit. Checks of what the statements returned belong
// after pipeTx, where a surprise is a bug to report, not a rollback.
//
// A failure without a reply from the server, once the batch may have
// been sent, returns waitroom.ErrCommitUnknown, as InTx does for COMMIT.
//
// after, when not nil, is one more statement after the COMMIT (see then).
// When the transaction commits, after.err is that statement's outcome.
func (db *DB) pipeTx(ctx context.Context, queue func(b *pgx.Batch), read func(br pgx.BatchResults) error, after *then) error {
	return db.retry(ctx, func(ctx context.Context) error { return db.pipeOnce(ctx, queue, read, after) })
}

func (db *DB) pipeOnce(ctx context.Context, queue func(b *pgx.Batch), read func(br pgx.BatchResults) error, after *then) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer db.release(ctx, conn)

	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL SERIALIZABLE`)
	queue(b)
	b.Queue(`COMMIT`)
	if after != nil {
		after.queue(b)
	}
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		err = read(br)
	}
	if err == nil {
		if _, err = br.Exec(); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	if err == nil && after != nil {
		after.err = after.read(br)
	}

	cerr := br.Close()
	if err == nil && after != nil && after.err == nil {
		after.err = cerr
	}
	if err == nil && after == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}

	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		// The server refused a statement or the COMMIT: nothing committed.
		return retryable(err)
	case conn.Conn().IsClosed():
		db.log.Error("commit outcome unknown", logkey.Err, err)
		return fmt.Errorf("%w: %w", waitroom.ErrCommitUnknown, err)
	}
	return err
}

// release returns conn to the pool, first rolling back a transaction that a
// failed batch left open: the pool would otherwise close the connection,
// and a new one costs a server process.
func (db *DB) release(ctx context.Context, conn *pgxpool.Conn) {
	if conn.Conn().IsClosed() || conn.Conn().PgConn().TxStatus() == 'I' {
		conn.Release()
		return
	}
	if _, err := conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`); err != nil {
		db.log.Warn("rollback after a failed batch", logkey.Err, err)
	}
	conn.Release()
}
