package target

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// serverUser is the unprivileged system user that runs initdb and postgres when the harness
// runs as root, because PostgreSQL refuses to run as root.
type serverUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary group ids, for the directory search check
}

// lookupServerUser returns nil when the harness is not root, so the server runs as the
// harness's own user. As root it returns the postgres user if it exists, else the nobody user.
// It creates no user, because a harness must not add accounts to the machine it tests on.
func lookupServerUser() (*serverUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var lookupErr error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			lookupErr = err
			continue
		}
		return newServerUser(u)
	}
	return nil, fmt.Errorf("look up an unprivileged user to run PostgreSQL as "+
		"(running as root, and neither postgres nor nobody exists): %w", lookupErr)
}

func newServerUser(u *user.User) (*serverUser, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q of user %s: %w", u.Uid, u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q of user %s: %w", u.Gid, u.Username, err)
	}
	su := &serverUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	ids, _ := u.GroupIds() // Without the list, only the primary group counts in searchable.
	for _, id := range ids {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			su.groups = append(su.groups, uint32(n))
		}
	}
	return su, nil
}

// sysProcAttr returns the process attributes for initdb and postgres. They get a process group
// of their own, so a Ctrl-C in the terminal reaches only the harness, which then stops the
// server itself. As root, they also get the unprivileged user's credentials.
func (u *serverUser) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		// An empty, non-nil group list drops root's supplementary groups.
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
	}
	return attr
}

// chown gives path to the server user; it does nothing when the server runs as the harness's
// own user.
func (u *serverUser) chown(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Chown(path, int(u.uid), int(u.gid)); err != nil {
		return fmt.Errorf("give %s to user %s: %w", path, u.name, err)
	}
	return nil
}

// checkSearchable returns an error unless the server user can reach entries of dir, which
// needs search (x) permission on dir and every directory above it. Root's own temporary
// directory is often mode 0700, and initdb would then fail with a less helpful message.
func (u *serverUser) checkSearchable(dir string) error {
	if u == nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve temporary directory %s: %w", dir, err)
	}
	for p := real; ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check temporary directory %s: %w", dir, err)
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && !u.searchable(st) {
			return fmt.Errorf("temporary directory %s is not searchable by user %s, "+
				"who runs PostgreSQL because the harness runs as root (%s has mode %v): "+
				"set TMPDIR=/tmp or another directory that user can reach", dir, u.name, p,
				info.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// searchable applies the owner, group and other execute bits the way the kernel does for a
// process with the server user's ids.
func (u *serverUser) searchable(st *syscall.Stat_t) bool {
	switch {
	case st.Uid == u.uid:
		return st.Mode&0o100 != 0
	case st.Gid == u.gid || slices.Contains(u.groups, st.Gid):
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}
