package target

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

// ErrNoServerBinaries is returned by StartLocal, wrapped, when no directory with the PostgreSQL
// server binaries initdb and postgres can be found.
var ErrNoServerBinaries = errors.New("PostgreSQL server binaries not found")

// EnvPGBin names the environment variable that points StartLocal at the directory holding
// initdb and postgres.
const EnvPGBin = "PARITY_PG_BIN"

// installHint names the packages that provide the server binaries, and the alternatives.
const installHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; " +
	"Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql@16), " +
	"set " + EnvPGBin + " to the directory that contains initdb and postgres, " +
	"or run against an existing server with --dsn (or PARITY_DSN)"

// versionedBinGlobs are the usual install places that carry a major version in their path,
// searched when neither an explicit directory nor PATH has initdb.
var versionedBinGlobs = []string{
	"/usr/lib/postgresql/*/bin",
	"/usr/pgsql-*/bin",
	"/opt/homebrew/opt/postgresql@*/bin",
}

// unversionedBinDir is the source build's default prefix, tried after every versioned place.
const unversionedBinDir = "/usr/local/pgsql/bin"

// findBinDir returns the directory with initdb and postgres: explicit if set, then the
// PARITY_PG_BIN variable, then initdb on PATH, then the highest version in the usual places.
// An explicit directory or variable that lacks the binaries is an error, not a reason to search
// elsewhere, because the caller chose it.
func findBinDir(explicit string) (string, error) {
	if explicit != "" {
		return checkBinDir(explicit, "BinDir")
	}
	if dir := os.Getenv(EnvPGBin); dir != "" {
		return checkBinDir(dir, EnvPGBin)
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			if dir := filepath.Dir(real); hasServerBinaries(dir) {
				return dir, nil
			}
		}
	}
	for _, dir := range candidateBinDirs() {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	searched := append(append([]string{"PATH"}, versionedBinGlobs...), unversionedBinDir)
	return "", fmt.Errorf("%w (searched %s): %s",
		ErrNoServerBinaries, strings.Join(searched, ", "), installHint)
}

// checkBinDir returns dir if it holds initdb and postgres, and otherwise an error that names
// the setting the directory came from.
func checkBinDir(dir, setting string) (string, error) {
	for _, name := range []string{"initdb", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return "", fmt.Errorf("%w: %s %s has no executable %s: %s",
				ErrNoServerBinaries, setting, dir, name, installHint)
		}
	}
	return dir, nil
}

// candidateBinDirs lists the existing install directories, highest major version first.
func candidateBinDirs() []string {
	var dirs []string
	for _, pattern := range versionedBinGlobs {
		matches, _ := filepath.Glob(pattern) // The patterns are constant and valid.
		dirs = append(dirs, matches...)
	}
	return append(sortByVersion(dirs), unversionedBinDir)
}

// sortByVersion sorts install directories by the version in their paths, highest first.
func sortByVersion(dirs []string) []string {
	slices.SortStableFunc(dirs, func(a, b string) int {
		return slices.Compare(pathVersion(b), pathVersion(a))
	})
	return dirs
}

// pathVersion reads the version number out of an install path such as
// /usr/lib/postgresql/15/bin, /usr/pgsql-9.6/bin or /opt/homebrew/opt/postgresql@16/bin.
// A path without one gets an empty version, which sorts last.
func pathVersion(dir string) []int {
	for _, part := range strings.Split(filepath.ToSlash(dir), "/") {
		if i := strings.LastIndexAny(part, "-@"); i >= 0 {
			part = part[i+1:]
		}
		var version []int
		for _, field := range strings.Split(part, ".") {
			n, err := strconv.Atoi(field)
			if err != nil {
				version = nil
				break
			}
			version = append(version, n)
		}
		if version != nil {
			return version
		}
	}
	return nil
}

func hasServerBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres"))
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}
