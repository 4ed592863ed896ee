package target

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// launch starts postgres directly, not through pg_ctl, so that the harness is its parent: the
// harness learns of its exit at once (Done), and unless Keep is set the kernel kills it if the
// harness dies.
func (l *Local) launch() error {
	logFile, err := os.OpenFile(l.serverLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create server log: %w", err)
	}
	defer logFile.Close() // postgres has its own copy of the descriptor.

	cmd := exec.Command(filepath.Join(l.binDir, "postgres"), l.serverArgs()...)
	l.prepare(cmd, logFile)
	if !l.keep {
		// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster ends its children too.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	}
	proc, err := startWatched(cmd, l.onExit)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	l.proc = proc
	return nil
}

// serverArgs returns the postgres command line. Settings given with -c override
// postgresql.conf.
func (l *Local) serverArgs() []string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(l.port),
		"unix_socket_directories=" + l.dir,
		"max_connections=" + strconv.Itoa(l.maxConnections),
		// The server is thrown away after the run, and durability against a machine crash is
		// not what the harness tests: without flushes to disk, commit latency measures
		// concurrency control rather than the disk. synchronous_commit stays on, because
		// with it off a crash of one server process loses commits the client was told had
		// succeeded, and the audit would rightly call the run inconsistent.
		"fsync=off",
		"synchronous_commit=on",
		"full_page_writes=off",
		// Conflicting writers learn of a deadlock after 50 ms instead of the default 1 s.
		"deadlock_timeout=50ms",
	}
	args := []string{"-D", l.dataDir()}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	return args
}

// startWatched starts cmd and reaps it in a goroutine that closes the process's done channel and
// then calls onExit. The goroutine keeps its OS thread locked for the life of the process
// because Pdeathsig fires when the thread that started the child exits, and an unlocked thread
// can be ended by the Go runtime while the harness runs on.
func startWatched(cmd *exec.Cmd, onExit func(*serverProcess)) (*serverProcess, error) {
	proc := &serverProcess{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the goroutine ends only after the process has exited, and the
		// thread then ends with it.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		proc.pid = cmd.Process.Pid
		started <- nil
		proc.err = cmd.Wait()
		close(proc.done)
		onExit(proc)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return proc, nil
}

// onExit logs a server that exited while the harness still relied on it.
func (l *Local) onExit(p *serverProcess) {
	if l.ready.Load() && !l.stopping.Load() {
		l.logger.Error("local PostgreSQL exited unexpectedly", "dir", l.dir, "pid", p.pid,
			"err", p.err)
	}
}

// waitReady polls the server until it accepts a connection. A server that exits first fails the
// wait with the end of its log, or with errPortTaken when another process had bound the port.
func (l *Local) waitReady(ctx context.Context, logStart int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		version, err := l.ping(ctx)
		if err == nil {
			l.version = version
			return nil
		}
		select {
		case <-l.proc.done:
			tail := readTail(l.serverLog(), logStart)
			if strings.Contains(tail, "Address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("postgres exited during start (%v); end of %s:\n%s",
				l.proc.err, l.serverLog(), tail)
		case <-ctx.Done():
			return fmt.Errorf("wait for postgres to accept connections (at most %v): %w "+
				"(last attempt: %v); end of %s:\n%s",
				readyTimeout, ctx.Err(), err, l.serverLog(), readTail(l.serverLog(), logStart))
		case <-time.After(pollInterval):
		}
	}
}

// ping connects once over the socket and returns the server's version.
func (l *Local) ping(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, l.maintenanceConnString())
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	return conn.PgConn().ParameterStatus("server_version"), nil
}

// createDatabase creates the database parity; initdb creates only postgres and the templates.
func (l *Local) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.maintenanceConnString())
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", localName, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+localName); err != nil {
		return fmt.Errorf("create database %s: %w", localName, err)
	}
	return nil
}

// maintenanceConnString returns a socket connection string for the postgres database, which
// exists from initdb on.
func (l *Local) maintenanceConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", l.dir, l.port, localName)
}

// stopServer sends postgres SIGINT, which starts a fast shutdown: open transactions roll back,
// clients are disconnected and a checkpoint runs. If postgres has not exited within
// stopTimeout, stopServer kills it.
func (l *Local) stopServer() error {
	p := l.proc
	if p == nil {
		return nil
	}
	l.stopping.Store(true)
	if isClosed(p.done) {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGINT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop postgres (pid %d): %w", p.pid, err)
	}
	if waitClosed(p.done, stopTimeout) {
		return nil
	}
	l.logger.Warn("local PostgreSQL did not stop in time; killing it",
		"pid", p.pid, "timeout", stopTimeout)
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill postgres (pid %d): %w", p.pid, err)
	}
	if waitClosed(p.done, killTimeout) {
		return nil
	}
	return fmt.Errorf("stop postgres (pid %d): still running %v after SIGKILL", p.pid, killTimeout)
}

// removeDir removes the server directory. It tries again for a short while because the
// children of a killed postmaster notice its death a moment later and may still be writing.
func (l *Local) removeDir() error {
	var err error
	for range 20 {
		if err = os.RemoveAll(l.dir); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove server directory: %w", err)
}

// discard undoes a failed start. Its errors are logged, because the start error matters more.
func (l *Local) discard() {
	if err := errors.Join(l.stopServer(), l.removeDir()); err != nil {
		l.logger.Warn("clean up after failed start", "dir", l.dir, "err", err)
	}
}

// readTail returns the last logTailLength bytes of the file at path from offset on, starting
// at a line boundary.
func readTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	if size := fileSize(path); size-offset > logTailLength {
		offset = size - logTailLength
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	text := string(b)
	if len(b) == logTailLength {
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[i+1:]
		}
	}
	if strings.TrimSpace(text) == "" {
		return "(log is empty)"
	}
	return text
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed(ch <-chan struct{}, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}
