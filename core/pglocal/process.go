package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// pgCtlTimeout is the pg_ctl -t value in seconds: how long pg_ctl waits
	// for the server to start or stop.
	pgCtlTimeout = 60

	// exitTimeout bounds the wait for the postmaster process to disappear
	// after pg_ctl reports that it stopped.
	exitTimeout = 10 * time.Second

	// logTailLines is how many lines of the server log an error includes.
	logTailLines = 20
)

// run runs the PostgreSQL program name from c.binDir, as the server user when
// c.cred is set, and returns an error that includes the program's output.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	// The server user may not be able to read the current directory, such
	// as /root, and the programs warn about it.
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// pg_ctl leaves the server running in the background with its output
	// sent to the log file, so nothing should hold the pipe open. WaitDelay
	// bounds the wait in case something does.
	cmd.WaitDelay = 5 * time.Second
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}

	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	return c.run(ctx, "initdb", "-D", c.dir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-locale")
}

// pgCtlStart starts the server on c.port and waits until it accepts
// connections. On failure the error includes the server log written during
// this attempt.
func (c *Cluster) pgCtlStart(ctx context.Context) error {
	logStart := fileSize(c.logFile)
	err := c.run(ctx, "pg_ctl", "-D", c.dir, "-w", "-t", strconv.Itoa(pgCtlTimeout),
		"-l", c.logFile, "-o", "-p "+strconv.Itoa(c.port), "start")
	if err != nil {
		return &startError{err: err, logFile: c.logFile, log: readLogSince(c.logFile, logStart)}
	}
	return nil
}

func (c *Cluster) pgCtlStop(ctx context.Context, mode string) error {
	return c.run(ctx, "pg_ctl", "-D", c.dir, "-w", "-t", strconv.Itoa(pgCtlTimeout), "-m", mode, "stop")
}

// startError is a failed pg_ctl start together with the log lines the server
// wrote during it.
type startError struct {
	err     error
	logFile string
	log     string
}

func (e *startError) Error() string {
	return fmt.Sprintf("%v\nlast lines of %s:\n%s", e.err, e.logFile, lastLines(e.log, logTailLines))
}

func (e *startError) Unwrap() error { return e.err }

// portInUse reports whether the server failed because another process had
// bound its port.
func (e *startError) portInUse() bool {
	return strings.Contains(e.log, "Address already in use")
}

// readPostmasterPID returns the PID on the first line of dir/postmaster.pid,
// or 0 when the file does not exist.
func readPostmasterPID(dir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parse postmaster.pid in %s: invalid pid %q", dir, first)
	}
	return pid, nil
}

// processAlive reports whether process pid exists and is not a zombie. A
// zombie counts as gone: it has exited, but a parent that does not reap its
// children, such as a minimal init in a container, may leave it listed.
func processAlive(pid int) bool {
	// kill(0) and kill(-1) would signal process groups, not one process.
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain spaces or parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	return stat[i+2] != 'Z'
}

// processInDir reports whether process pid runs with dir as its working
// directory. The postmaster and its backends change to their data directory,
// so this distinguishes a live server of dir from an unrelated process that
// reuses the PID of a server that died. It returns an error when it cannot
// read the working directory.
func processInDir(pid int, dir string) (bool, error) {
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return false, fmt.Errorf("read working directory of pid %d: %w", pid, err)
	}
	return cwd == dir, nil
}

// waitExit polls until process pid is gone, for at most exitTimeout.
func waitExit(ctx context.Context, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, exitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for processAlive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for server pid %d to exit: %w", pid, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the server binds it, so callers retry.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	return port, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// maxLogRead bounds how much of the server log an error message reads.
const maxLogRead = 64 << 10

// readLogSince returns what the server wrote to the log at path after offset,
// or at most the last maxLogRead bytes of it. Errors are returned as text
// because the result only decorates another error.
func readLogSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(open server log: %v)", err)
	}
	defer f.Close()

	offset = max(offset, fileSize(path)-maxLogRead)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(read server log: %v)", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLogRead))
	if err != nil {
		return fmt.Sprintf("(read server log: %v)", err)
	}
	return string(data)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove file: %w", err)
	}
	return nil
}
