package pglocal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// debianBinGlob matches the per-version binary directories that the Debian and
// Ubuntu postgresql packages install, which are not on PATH by default.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// ErrNoBinaries is returned by FindBinDir when no PostgreSQL server binaries
// are installed.
var ErrNoBinaries = errors.New(`postgresql server binaries (initdb, pg_ctl) not found on PATH or in ` +
	debianBinGlob + `: install them with "apt-get install postgresql", or pass --database-url to use an existing server`)

// FindBinDir returns the directory that contains initdb and pg_ctl. It looks
// for initdb on PATH first, following symlinks so that pg_ctl can find the
// postgres binary next to it. Then it tries the highest version under
// /usr/lib/postgresql/*/bin. It returns ErrNoBinaries if neither has them.
func FindBinDir() (string, error) {
	if path, err := exec.LookPath("initdb"); err == nil {
		resolved, err := filepath.EvalSymlinks(path)
		if err == nil && hasServerBinaries(filepath.Dir(resolved)) {
			return filepath.Dir(resolved), nil
		}
	}

	dirs, err := filepath.Glob(debianBinGlob)
	if err != nil {
		return "", fmt.Errorf("find postgresql binaries: %w", err)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return slices.Compare(versionOf(b), versionOf(a))
	})
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

// hasServerBinaries reports whether dir holds executable initdb, pg_ctl and
// postgres files. pg_ctl starts the postgres binary from its own directory.
func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf parses the version directory in /usr/lib/postgresql/VERSION/bin,
// such as "15" or "9.6", into its numeric parts. Non-numeric parts become -1
// so that such directories sort last.
func versionOf(binDir string) []int {
	name := filepath.Base(filepath.Dir(binDir))
	var parts []int
	for _, field := range strings.Split(name, ".") {
		n, err := strconv.Atoi(field)
		if err != nil {
			n = -1
		}
		parts = append(parts, n)
	}
	return parts
}
