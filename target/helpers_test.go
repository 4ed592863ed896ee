package target

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// baseTempDir is the temporary directory the tests started with, before tempRoot changed
// TMPDIR.
var baseTempDir = os.TempDir()

// tempRoot points os.TempDir at a fresh directory that the server's user can search, so a test
// can check that nothing is left in it, and removes the directory after the test.
func tempRoot(t *testing.T) string {
	t.Helper()
	// Always under the original temporary directory: a root made inside another test's
	// root would lengthen the server's socket path past the 107 bytes Unix sockets allow.
	root, err := os.MkdirTemp(baseTempDir, "parity-t-")
	if err != nil {
		t.Fatalf("create temporary root: %v", err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatalf("chmod temporary root: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	t.Setenv("TMPDIR", root)
	return root
}

// startLocal starts a throwaway server with Logger going to the test log, and closes it after
// the test unless the test closed it already.
func startLocal(t *testing.T, opts LocalOptions) *Local {
	t.Helper()
	opts.Logger = testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := StartLocal(ctx, opts)
	if err != nil {
		t.Fatalf("StartLocal: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// testLogger returns a logger that writes to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// connect opens one connection with connString and closes it after the test.
func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// processesUnder returns the ids of processes whose working directory is under dir. The
// postmaster and every backend work in the data directory, and initdb in the server
// directory, so this finds every process a throwaway server left behind.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	links, err := filepath.Glob("/proc/[0-9]*/cwd")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var pids []string
	for _, link := range links {
		cwd, err := os.Readlink(link)
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			pids = append(pids, filepath.Base(filepath.Dir(link)))
		}
	}
	return pids
}

// waitNoProcessesUnder fails the test if processes still work under dir after a few seconds.
// The children of a killed postmaster exit a moment after it.
func waitNoProcessesUnder(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := processesUnder(t, dir)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes %v still work under %s", pids, dir)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertEmptyDir fails the test unless dir exists and is empty.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range entries {
		t.Errorf("%s left behind in %s", e.Name(), dir)
	}
}

// processUIDs returns the real, effective, saved and filesystem uids of a process.
func processUIDs(t *testing.T, pid int) []string {
	t.Helper()
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatalf("read status of process %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no Uid line in status of process %d", pid)
	return nil
}

// waitDoneOrFail fails the test unless ch closes within 15 seconds of the event named.
func waitDoneOrFail(t *testing.T, ch <-chan struct{}, event string) {
	t.Helper()
	if !waitClosed(ch, 15*time.Second) {
		t.Fatalf("Done() not closed within 15s %s", event)
	}
}
