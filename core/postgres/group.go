package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// Group commit: concurrent pipelined transactions of different buyers run
// together as one transaction, with one round trip and one commit. Every
// member's statements enforce their own rules in SQL (see pipeTx), so a
// member that breaks one fails the group's transaction, and nothing of the
// group commits. The failing member then runs alone, to get its own
// result, and the others go back to the front of the queue. A failure that
// names no member, such as a serialization failure, sends every member to
// run alone. The group commits all of its members or none, so each
// member's outcome stays atomic.
//
// On the sale benchmark, two lanes sold 16% more places per second than
// running each transaction alone (bench/RESULTS.md).

const (
	// groupMax bounds the members of one group transaction.
	groupMax = 8
	// groupTimeout bounds one group transaction. The members' own contexts
	// do not apply once a group runs them.
	groupTimeout = 30 * time.Second
)

// grouper queues transactions and runs them in groups, at most lanes groups
// at a time. A transaction waits only while every lane is busy: with no
// load it runs at once, alone.
type grouper struct {
	lanes int

	mu      sync.Mutex // guards pending and busy
	pending []*member
	busy    int
}

type member struct {
	queue func(b *pgx.Batch)
	read  func(br pgx.BatchResults) error
	after *then
	done  chan error
}

// groupLanes returns the lanes for a pool of maxConns connections: few, so
// that groups form; a lane holds one connection while its group runs.
// NOTE: sized for a database on a small machine; a large CockroachDB
// cluster wants more lanes (SetGroupLanes).
func groupLanes(maxConns int) int { return max(2, maxConns/16) }

// SetGroupLanes sets how many group transactions run at once; 0 runs every
// transaction alone. Call it before the DB is used from more than one
// goroutine.
func (db *DB) SetGroupLanes(n int) { db.group.lanes = n }

// groupTx runs a transaction like pipeTx, in a group with concurrent ones
// when there are any. read may run more than once: in a group, then alone.
func (db *DB) groupTx(ctx context.Context, queue func(b *pgx.Batch), read func(br pgx.BatchResults) error) error {
	return db.groupTxThen(ctx, queue, read, nil)
}

// groupTxThen is groupTx with a statement after the COMMIT (see then). In
// a group, the members' after statements share one implicit transaction.
func (db *DB) groupTxThen(ctx context.Context, queue func(b *pgx.Batch), read func(br pgx.BatchResults) error, after *then) error {
	if db.group.lanes <= 0 {
		return db.pipeTx(ctx, queue, read, after)
	}
	m := &member{queue: queue, read: read, after: after, done: make(chan error, 1)}
	db.group.mu.Lock()
	db.group.pending = append(db.group.pending, m)
	lead := db.group.busy < db.group.lanes
	if lead {
		db.group.busy++
	}
	db.group.mu.Unlock()
	if lead {
		go db.leadGroups()
	}
	// The member is not withdrawn when ctx ends: a group may be running it
	// already, so only its result shows what happened.
	return <-m.done
}

// leadGroups runs groups of queued members until none are left.
func (db *DB) leadGroups() {
	g := &db.group
	for {
		g.mu.Lock()
		n := min(len(g.pending), groupMax)
		if n == 0 {
			g.busy--
			g.mu.Unlock()
			return
		}
		batch := append([]*member(nil), g.pending[:n]...)
		g.pending = g.pending[n:]
		g.mu.Unlock()
		db.runGroup(batch)
	}
}

// runGroup runs members as one transaction and delivers each result.
func (db *DB) runGroup(members []*member) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	if len(members) == 1 {
		m := members[0]
		m.done <- db.pipeTx(ctx, m.queue, m.read, m.after)
		return
	}
	failed := -1 // the member whose statement failed
	start := time.Now()
	err := db.pipeOnce(ctx, func(b *pgx.Batch) {
		for _, m := range members {
			m.queue(b)
		}
	}, func(br pgx.BatchResults) error {
		for i, m := range members {
			if err := m.read(br); err != nil {
				failed = i
				return err
			}
		}
		return nil
	}, joinAfter(members))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		// Each member counts as a committed transaction that took the
		// group's time.
		db.commits.Add(int64(len(members)))
		db.txNanos.Add(int64(len(members)) * int64(time.Since(start)))
		for _, m := range members {
			m.done <- nil
		}
	case errors.Is(err, waitroom.ErrCommitUnknown):
		// Every member may have committed.
		for _, m := range members {
			m.done <- err
		}
	case failed >= 0 && errors.As(err, &pgErr) && SQLState(err) != "40001":
		// One member broke a rule: it runs alone, and the rest go back to
		// the front of the queue.
		rest := append(append([]*member(nil), members[:failed]...), members[failed+1:]...)
		db.group.mu.Lock()
		db.group.pending = append(rest, db.group.pending...)
		db.group.mu.Unlock()
		go db.runAlone(members[failed])
	default:
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Go(func() { db.runAlone(m) })
		}
		wg.Wait()
	}
}

// runAlone runs a member as its own transaction, with the usual reruns.
func (db *DB) runAlone(m *member) {
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	m.done <- db.pipeTx(ctx, m.queue, m.read, m.after)
}

// joinAfter returns one then that sends the members' after statements in
// order, or nil when no member has one.
func joinAfter(members []*member) *then {
	var afters []*then
	for _, m := range members {
		if m.after != nil {
			afters = append(afters, m.after)
		}
	}
	if len(afters) == 0 {
		return nil
	}
	return &then{
		queue: func(b *pgx.Batch) {
			for _, a := range afters {
				a.queue(b)
			}
		},
		read: func(br pgx.BatchResults) error {
			for _, a := range afters {
				a.err = a.read(br)
			}
			return nil
		},
	}
}
