package pglocal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// serverUser is the account that runs initdb and the server when this program
// runs as root, because initdb, pg_ctl and postgres all reject running as root.
const serverUser = "postgres"

// lookupServerUser returns the credential of serverUser when the process runs
// as root, and nil otherwise, which means "run as the current user".
func lookupServerUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}

	u, err := user.Lookup(serverUser)
	if err != nil {
		return nil, fmt.Errorf("look up user %s, which runs the server when started as root: %w", serverUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of user %s: %w", serverUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of user %s: %w", serverUser, err)
	}
	groupIDs, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("look up groups of user %s: %w", serverUser, err)
	}

	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for _, id := range groupIDs {
		n, err := strconv.ParseUint(id, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse group id %q of user %s: %w", id, serverUser, err)
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return cred, nil
}

// prepareDir creates dir and its missing parents. When cred is not nil, it
// also makes dir owned by that user, and lets that user search the parents
// that it created. It changes no directory that existed before, so it only
// checks that existing parents are searchable and that an existing dir has the
// right owner.
func prepareDir(dir string, cred *syscall.Credential) error {
	missing, err := missingDirs(dir)
	if err != nil {
		return err
	}
	if cred != nil {
		// Check before creating anything, so a failure leaves no trace.
		existing := filepath.Dir(dir)
		if len(missing) > 0 {
			existing = filepath.Dir(missing[0])
		}
		if err := checkSearchable(existing, cred); err != nil {
			return err
		}
	}

	created, err := mkdirs(missing)
	if err != nil {
		return err
	}
	if cred == nil {
		return nil
	}
	for _, d := range created {
		if d == dir {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("chown data directory: %w", err)
			}
			continue
		}
		// Search permission is all the server needs on a parent.
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("chmod created parent directory: %w", err)
		}
	}
	if !slices.Contains(created, dir) {
		return checkOwner(dir, cred)
	}
	return nil
}

// missingDirs returns dir and those of its parents that do not exist, from
// the top down.
func missingDirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat directory: %w", err)
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	slices.Reverse(missing)
	return missing, nil
}

// mkdirs creates dirs in order with mode 0700 and returns those that it
// created.
func mkdirs(dirs []string) ([]string, error) {
	var created []string
	for _, d := range dirs {
		err := os.Mkdir(d, 0o700)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first, so it is not ours to change.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create directory: %w", err)
		}
		created = append(created, d)
	}
	return created, nil
}

// checkOwner returns an error unless the existing data directory dir belongs
// to the user in cred.
func checkOwner(dir string, cred *syscall.Credential) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("stat data directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat data directory %s: no owner information", dir)
	}
	if st.Uid != cred.Uid {
		return fmt.Errorf("data directory %s is owned by uid %d, not by user %s (uid %d), which runs the server: "+
			"run chown -R %s: %s, or remove the directory so that it is created again", dir, st.Uid, serverUser, cred.Uid, serverUser, dir)
	}
	return nil
}

// checkSearchable returns an error unless the user in cred may search dir and
// every directory above it, which the server needs to reach its data directory.
//
// NOTE: it reads only the owner, group and other mode bits, so a directory
// that grants access through an ACL is reported as not searchable.
func checkSearchable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stat parent directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && !canSearch(st, cred) {
			return fmt.Errorf("directory %s is not searchable by user %s, which runs the server: "+
				"run chmod o+x %s, or choose a data directory elsewhere", d, serverUser, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func canSearch(st *syscall.Stat_t, cred *syscall.Credential) bool {
	switch {
	case st.Uid == cred.Uid:
		return st.Mode&0o100 != 0
	case st.Gid == cred.Gid || slices.Contains(cred.Groups, st.Gid):
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}
