package target

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Time limits of a throwaway server's life cycle.
const (
	readyTimeout  = 60 * time.Second // from launching postgres to its first accepted connection
	pingTimeout   = 2 * time.Second  // one connection attempt while waiting for the server
	pollInterval  = 20 * time.Millisecond
	stopTimeout   = 15 * time.Second // fast shutdown, before SIGKILL
	killTimeout   = 5 * time.Second  // SIGKILL, before giving up
	initdbDelay   = 5 * time.Second  // output copying after initdb is killed
	bindAttempts  = 3                // launches when another process takes the chosen port first
	logTailLength = 2048             // bytes of a log quoted in an error
)

// maxSocketPath is the longest Unix socket path Linux accepts: sun_path holds 108 bytes,
// including the terminating NUL.
const maxSocketPath = 107

// serverProcess is one launched postgres process.
type serverProcess struct {
	pid  int
	done chan struct{} // closed after the process has exited and been reaped
	err  error         // the exit status; read only after done is closed
}

// makeDir creates the server's temporary directory in os.TempDir and gives it to the server
// user.
func (l *Local) makeDir() error {
	tmp := os.TempDir()
	if err := l.user.checkSearchable(tmp); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tmp, "parity-pg-")
	if err != nil {
		return fmt.Errorf("create server directory: %w (set TMPDIR to a writable directory)", err)
	}
	l.dir = dir
	if err := checkSocketDir(dir); err != nil {
		l.removeDir()
		return err
	}
	if err := l.user.chown(dir); err != nil {
		l.removeDir()
		return err
	}
	return nil
}

// checkSocketDir rejects a directory that cannot hold the server's Unix socket: the path must
// fit in a socket address, and it must not need quoting in unix_socket_directories or in a
// keyword/value connection string.
func checkSocketDir(dir string) error {
	socket := filepath.Join(dir, ".s.PGSQL.65535")
	if len(socket) > maxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes: set TMPDIR to a shorter "+
			"directory such as /tmp", socket, maxSocketPath)
	}
	if strings.ContainsAny(dir, " \t\n\r,'\"\\") {
		return fmt.Errorf("server directory %q contains a space, comma, quote or backslash, "+
			"which the socket setting cannot carry: set TMPDIR to a plain path such as /tmp", dir)
	}
	return nil
}

// start runs initdb, writes the password file, launches postgres and creates the database.
func (l *Local) start(ctx context.Context) error {
	if err := l.initdb(ctx); err != nil {
		return err
	}
	// libpq's password file format: host:port:database:user:password.
	line := fmt.Sprintf("127.0.0.1:*:*:%s:%s\n", localName, l.password)
	if err := writeSecretFile(l.pgpassPath(), line, nil); err != nil {
		return err
	}
	if err := l.launchUntilReady(ctx, freePort); err != nil {
		return err
	}
	return l.createDatabase(ctx)
}

// writeSecretFile creates path, readable by its owner only, and gives it to owner unless owner
// is nil.
func writeSecretFile(path, content string, owner *serverUser) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.WriteString(content)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return owner.chown(path)
}

// initdb creates the data directory with the superuser parity, whose password comes from a
// file so that it never appears in a command line. Local (socket) connections are trusted and
// TCP connections need the password.
func (l *Local) initdb(ctx context.Context) error {
	pwfile := filepath.Join(l.dir, pwfileName)
	if err := writeSecretFile(pwfile, l.password+"\n", l.user); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	logPath := filepath.Join(l.dir, initdbLogName)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create initdb log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.CommandContext(ctx, filepath.Join(l.binDir, "initdb"),
		"--pgdata="+l.dataDir(), "--username="+localName, "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	l.prepare(cmd, logFile)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// initdb runs postgres in bootstrap mode as its own child; both are in initdb's process
	// group, so a cancelled start kills the group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = initdbDelay

	// Pdeathsig fires when the thread that started the child exits, not the process, so the
	// thread stays locked to this goroutine until initdb has exited.
	begin := time.Now()
	runtime.LockOSThread()
	err = cmd.Run()
	runtime.UnlockOSThread()
	l.logger.Debug("initdb finished", "dir", l.dir, "err", err,
		"elapsed", time.Since(begin).Round(time.Millisecond))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("run initdb: %w", ctx.Err())
		}
		return fmt.Errorf("run initdb: %w; end of %s:\n%s", err, logPath, readTail(logPath, 0))
	}
	return nil
}

// prepare sets what initdb and postgres share: working directory, environment, output and
// process attributes. The working directory is the server directory because a process whose
// user has changed cannot chdir back into root's home directory.
func (l *Local) prepare(cmd *exec.Cmd, output *os.File) {
	cmd.Dir = l.dir
	cmd.Env = serverEnv()
	cmd.Stdout = output
	cmd.Stderr = output
	cmd.SysProcAttr = l.user.sysProcAttr()
}

// serverEnv returns the harness's environment without libpq and server variables such as
// PGDATA or PGPORT, and with the C locale, so that the server's messages are in English and
// the bind error can be recognized.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// launchUntilReady launches postgres on a port from choosePort and waits for it to accept
// connections. Another process can bind the port between the check and postgres's own bind.
// Postgres then exits with "Address already in use", and launchUntilReady tries a new port.
func (l *Local) launchUntilReady(ctx context.Context, choosePort func() (int, error)) error {
	for attempt := 1; ; attempt++ {
		port, err := choosePort()
		if err != nil {
			return err
		}
		l.port = port
		logStart := fileSize(l.serverLog())
		if err := l.launch(); err != nil {
			return err
		}
		err = l.waitReady(ctx, logStart)
		if !errors.Is(err, errPortTaken) {
			return err
		}
		if attempt == bindAttempts {
			return fmt.Errorf("launch postgres: %w, %d times", err, bindAttempts)
		}
		l.logger.Info("port taken before postgres bound it; trying another", "port", port)
	}
}

var errPortTaken = errors.New("port taken by another process")

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}
