package pglocal

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// settingsFile is rewritten on every start and included from postgresql.conf,
// so changes to the settings below also reach data directories that older
// versions of this package created. ALTER SYSTEM still overrides it, because postgresql.auto.conf is
// read after postgresql.conf.
const settingsFile = "taquilla.conf"

// includeLine is appended once to postgresql.conf.
const includeLine = "include '" + settingsFile + "'"

// maxSocketPath is the longest Unix socket path that PostgreSQL accepts on
// Linux: sockaddr_un.sun_path is 108 bytes, including the terminating NUL.
const maxSocketPath = 107

// writeSettings writes settingsFile into dir and makes postgresql.conf
// include it. The port is not in the file because it is passed to the server
// on the command line and can change between starts.
func writeSettings(dir string, cred *syscall.Credential) error {
	path := filepath.Join(dir, settingsFile)
	if err := os.WriteFile(path, settingsText(dir), 0o600); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	if cred != nil {
		if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("chown settings: %w", err)
		}
	}
	return addInclude(filepath.Join(dir, "postgresql.conf"))
}

// fixedSettings are the settings that do not depend on the data directory.
// Serializable is the default isolation, so a transaction that requests no
// level still gets it. fsync and synchronous_commit are on by default, and
// are set here to show that a committed sale must survive a crash.
//
// PostgreSQL turns a transaction's predicate locks on more than
// max_pred_locks_per_page rows of one page (default 2) into a lock on the
// whole page. A buyer of four adjacent seats would then conflict with every
// buyer of a seat on the same page; 64 keeps the locks on the rows.
//
// wal_buffers is raised from its default (1/32 of shared_buffers, 4 MB
// here) because group commits of many buyers filled it: committing
// backends then wrote WAL themselves while holding the WAL write lock.
const fixedSettings = `listen_addresses = '127.0.0.1'
default_transaction_isolation = 'serializable'
max_connections = 200
shared_buffers = '128MB'
fsync = on
synchronous_commit = on
max_pred_locks_per_page = 64
max_pred_locks_per_transaction = 256
wal_buffers = '16MB'
`

func settingsText(dir string) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by core/pglocal on every start, so edits here are lost.\n")
	b.WriteString("# Use ALTER SYSTEM to override a setting.\n")
	b.WriteString(fixedSettings)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", quoteSetting(socketDir(dir)))
	return b.Bytes()
}

// socketDir returns dir when a socket for any port fits in it, and "" (TCP
// only) when the path would be too long.
func socketDir(dir string) string {
	if len(dir)+len("/.s.PGSQL.65535") > maxSocketPath {
		return ""
	}
	return dir
}

// quoteSetting quotes s as a string value in postgresql.conf, where a quote
// is doubled and a backslash starts an escape.
func quoteSetting(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `''`)
	return "'" + s + "'"
}

// addInclude appends includeLine to the postgresql.conf at path unless a line
// already equals it.
func addInclude(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == includeLine {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Settings managed by core/pglocal.\n%s\n", includeLine)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("append to postgresql.conf: %w", err)
	}
	return nil
}
