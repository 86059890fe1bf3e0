// Package pglocal runs a PostgreSQL cluster that belongs to this program: it
// creates and initializes the data directory on first start, reuses it
// afterwards, and serves it on 127.0.0.1 only. Tests and the one-process
// development launcher use it so that they need no PostgreSQL set up by hand.
//
// The cluster trusts every connection, so any local user can connect to it as
// the superuser. Use it for tests and development, not to hold data that other
// users of the machine must not read.
//
// When the program runs as root, initdb and the server run as the user
// "postgres", which owns the data directory.
package pglocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taquilla/taquilla/shared/logkey"
)

// superuser is the role that initdb creates and that URL connects as.
const superuser = "postgres"

// duplicateDatabase is the SQLSTATE of CREATE DATABASE for a name in use.
const duplicateDatabase = "42P04"

// Options configures Start.
type Options struct {
	// Dir is the data directory. Start creates and initializes it when it
	// contains no PG_VERSION file, and reuses it otherwise.
	Dir string

	// Port is the TCP port on 127.0.0.1. Zero picks a free port.
	Port int

	// BinDir is the directory that contains initdb, pg_ctl and postgres.
	// Empty means FindBinDir.
	BinDir string

	// Log receives lifecycle messages. Nil discards them.
	Log *slog.Logger
}

// Cluster is a running PostgreSQL server started by Start. Its methods are
// safe for concurrent use.
type Cluster struct {
	dir     string // absolute data directory, with symlinks resolved
	binDir  string
	logFile string
	cred    *syscall.Credential // user that runs the server; nil means the current user
	log     *slog.Logger
	port    int
	pid     int // postmaster PID

	mu      sync.Mutex // guards stopped
	stopped bool
}

// Start starts a cluster in opts.Dir, running initdb first when the directory
// holds no cluster yet. A server that an earlier run left running in the same
// directory is stopped first, so that the new one listens on the requested
// port. Start returns once a connection to the server succeeds.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare cluster in %s: %w", c.dir, err)
	}
	if err := c.stopLeftover(ctx); err != nil {
		return nil, fmt.Errorf("stop earlier server in %s: %w", c.dir, err)
	}
	if err := c.start(ctx, opts.Port); err != nil {
		return nil, fmt.Errorf("start cluster in %s: %w", c.dir, err)
	}
	return c, nil
}

func newCluster(opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("start cluster: missing data directory")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("start cluster: invalid port %d, want 0 to 65535", opts.Port)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("start cluster: resolve data directory: %w", err)
	}

	binDir := opts.BinDir
	if binDir == "" {
		binDir, err = FindBinDir()
		if err != nil {
			return nil, fmt.Errorf("start cluster: %w", err)
		}
	}
	cred, err := lookupServerUser()
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}

	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cluster{
		dir:    dir,
		binDir: binDir,
		cred:   cred,
		log:    log.With(logkey.Component, "core.pglocal", logkey.Dir, dir),
	}, nil
}

// prepare creates the data directory, runs initdb if it holds no cluster, and
// writes the settings.
func (c *Cluster) prepare(ctx context.Context) error {
	if err := prepareDir(c.dir, c.cred); err != nil {
		return err
	}
	// Compare working directories of processes against the resolved path.
	dir, err := filepath.EvalSymlinks(c.dir)
	if err != nil {
		return fmt.Errorf("resolve data directory: %w", err)
	}
	c.dir = dir
	c.logFile = filepath.Join(dir, "postgres.log")

	if fileSize(filepath.Join(dir, "PG_VERSION")) == 0 {
		begin := time.Now()
		if err := c.initdb(ctx); err != nil {
			return err
		}
		c.log.Info("data directory initialized", logkey.Elapsed, time.Since(begin))
	}
	return writeSettings(dir, c.cred)
}

// stopLeftover stops a server that still runs in c.dir, such as one left by
// a run that crashed. A postmaster.pid whose process is gone is left for the
// server to replace at start.
func (c *Cluster) stopLeftover(ctx context.Context) error {
	pid, err := readPostmasterPID(c.dir)
	if err != nil || pid == 0 || !processAlive(pid) {
		return err
	}

	inDir, err := processInDir(pid, c.dir)
	if err != nil {
		// The server rejects the start while that process is alive, and
		// the start error quotes its log line, so nothing more is needed here.
		c.log.Warn("cannot tell whether postmaster.pid names a running server", logkey.PID, pid, logkey.Err, err)
		return nil
	}
	if !inDir {
		// The PID now belongs to another process, so the file is stale, but
		// the server would take it for a running postmaster.
		c.log.Warn("removing stale postmaster.pid whose pid now belongs to another process", logkey.PID, pid)
		return removeFile(filepath.Join(c.dir, "postmaster.pid"))
	}

	c.log.Warn("stopping server left running by an earlier run", logkey.PID, pid)
	if err := c.pgCtlStop(ctx, "fast"); err != nil {
		return err
	}
	return waitExit(ctx, pid)
}

// start starts the server and waits for a connection to succeed. When port
// is 0 it picks a free port, and picks again a limited number of times if
// another process binds the port first.
func (c *Cluster) start(ctx context.Context, port int) error {
	attempts := 1
	if port == 0 {
		attempts = 3
	}
	begin := time.Now()
	for attempt := 1; ; attempt++ {
		c.port = port
		if port == 0 {
			p, err := freePort()
			if err != nil {
				return err
			}
			c.port = p
		}

		err := c.pgCtlStart(ctx)
		if err == nil {
			break
		}
		var se *startError
		if attempt >= attempts || !errors.As(err, &se) || !se.portInUse() {
			err = fmt.Errorf("port %d: %w", c.port, err)
			return errors.Join(err, c.stopFailed(context.WithoutCancel(ctx)))
		}
		c.log.Warn("port taken before the server bound it, retrying", logkey.Port, c.port, logkey.Attempt, attempt)
	}

	pid, err := readPostmasterPID(c.dir)
	if err != nil {
		return err
	}
	if pid == 0 {
		return errors.New("server started but wrote no postmaster.pid")
	}
	c.pid = pid
	if err := c.waitReady(ctx); err != nil {
		return errors.Join(err, c.Stop(context.WithoutCancel(ctx)))
	}
	c.log.Info("cluster started", logkey.Port, c.port, logkey.PID, c.pid, logkey.Elapsed, time.Since(begin))
	return nil
}

// stopFailed stops a server that pg_ctl start gave up waiting for, which
// pg_ctl leaves running.
func (c *Cluster) stopFailed(ctx context.Context) error {
	pid, err := readPostmasterPID(c.dir)
	if err != nil || pid == 0 || !processAlive(pid) {
		return err
	}
	if inDir, err := processInDir(pid, c.dir); err != nil || !inDir {
		return err
	}
	c.log.Warn("stopping server that failed to start", logkey.PID, pid)
	if err := c.pgCtlStop(ctx, "immediate"); err != nil {
		return err
	}
	return waitExit(ctx, pid)
}

// readyTimeout bounds how long waitReady tries to connect.
const readyTimeout = 30 * time.Second

// waitReady connects to the server until a connection succeeds. pg_ctl -w
// has already waited for the server to report ready, so this normally
// succeeds at once. It also proves that the server accepts TCP connections.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to server on port %d: %w", c.port, err)
		case <-tick.C:
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	return errors.Join(conn.Ping(ctx), conn.Close(ctx))
}

// Port returns the TCP port that the server listens on.
func (c *Cluster) Port() int { return c.port }

// URL returns a connection URL for database as the superuser "postgres" over
// TCP. No password is needed because the cluster trusts local connections.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     "127.0.0.1:" + strconv.Itoa(c.port),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name. It returns nil if the database
// already exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	err := c.execAdmin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == duplicateDatabase {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name, closing the connections to it first
// (WITH (FORCE), PostgreSQL 13 and later). It returns nil if the database
// does not exist.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	err := c.execAdmin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// execAdmin runs sql on the "postgres" database over a new connection. CREATE and
// DROP DATABASE cannot run inside a transaction, and a new connection keeps
// the cluster free of a pool that would need closing.
func (c *Cluster) execAdmin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql)
	return errors.Join(err, conn.Close(ctx))
}

// Stop stops the server with a fast shutdown, which ends open sessions, and
// waits until the postmaster process has exited. Its backends exit before it.
// If the fast shutdown fails, Stop tries an immediate one. Calling Stop again
// returns nil, and so does stopping a server that already exited or that a
// later Start in the same directory replaced.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}

	pid, err := readPostmasterPID(c.dir)
	if err != nil {
		return fmt.Errorf("stop cluster in %s: %w", c.dir, err)
	}
	if pid != c.pid || !processAlive(c.pid) {
		c.stopped = true
		c.log.Info("cluster already stopped", logkey.PID, c.pid)
		return nil
	}

	if err := c.pgCtlStop(ctx, "fast"); err != nil {
		c.log.Warn("fast shutdown failed, trying immediate shutdown", logkey.PID, c.pid, logkey.Err, err)
		if err := c.pgCtlStop(ctx, "immediate"); err != nil {
			return fmt.Errorf("stop cluster in %s: %w", c.dir, err)
		}
	}
	if err := waitExit(ctx, c.pid); err != nil {
		return fmt.Errorf("stop cluster in %s: %w", c.dir, err)
	}
	c.stopped = true
	c.log.Info("cluster stopped", logkey.PID, c.pid)
	return nil
}
