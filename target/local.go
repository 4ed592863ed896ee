package target

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Names inside a throwaway server's directory.
const (
	dataSubdir    = "data"       // PGDATA, created by initdb, which needs a directory of its own
	serverLogName = "server.log" // the postgres process's stdout and stderr
	initdbLogName = "initdb.log"
	pgpassName    = "pgpass" // the password for TCP connections, in libpq's password file format
	pwfileName    = "pwfile" // the password for initdb, removed once initdb is done
)

// localName is the superuser and database name of a throwaway server.
const localName = "parity"

// defaultMaxConnections is PostgreSQL's own default for max_connections.
const defaultMaxConnections = 100

// maxBackends is PostgreSQL's upper bound on max_connections (2^18 - 1).
const maxBackends = 1<<18 - 1

// minMaxConnections is the smallest max_connections PostgreSQL accepts with its default
// superuser_reserved_connections of 3, which must be less than max_connections.
const minMaxConnections = 4

// LocalOptions configures StartLocal. The zero value starts a server with max_connections 100
// from discovered binaries, removes it on Close and logs nothing.
type LocalOptions struct {
	// MaxConnections is the server's max_connections. Size it from the run's concurrency plus
	// headroom for the verifier and monitoring connections. Zero means 100.
	MaxConnections int
	// Keep leaves the server running on Close, and its directory in place. ConnectHint returns
	// the commands that reach and stop it.
	Keep bool
	// BinDir is the directory with initdb and postgres. Empty means discover: PARITY_PG_BIN,
	// then initdb on PATH, then the highest version in the usual install places.
	BinDir string
	// Logger receives start and stop events. Nil discards them.
	Logger *slog.Logger
}

// Local is a throwaway PostgreSQL server in a temporary directory, reached over a Unix socket in
// that directory or over TCP on a loopback port. Its methods are safe for concurrent use.
type Local struct {
	dir      string      // temporary directory: data, socket, logs and password file
	binDir   string      // directory with initdb, postgres and usually pg_ctl
	port     int         // TCP port on 127.0.0.1, also part of the socket file's name
	password string      // superuser password for TCP connections; never printed or logged
	user     *serverUser // who runs the server; nil means the harness's own user
	keep     bool
	logger   *slog.Logger
	version  string // server_version reported by the server

	maxConnections int // the server's max_connections

	proc      *serverProcess
	ready     atomic.Bool // set once StartLocal succeeds
	stopping  atomic.Bool // set by Close, so that the exit it causes is not logged as a loss
	closeOnce sync.Once
	closeErr  error
}

// StartLocal creates a temporary directory, runs initdb in it and starts postgres as a child
// process, then waits until the server accepts connections. ctx bounds the whole start; when it
// ends early, or anything fails, StartLocal stops what it started and removes the directory.
// Without server binaries the error wraps ErrNoServerBinaries.
//
// Running as root, StartLocal runs the server as the postgres user if it exists, else as the
// nobody user, because PostgreSQL refuses to run as root. Unless opts.Keep is set, the server is
// killed if the harness dies, but its directory is then left behind.
func StartLocal(ctx context.Context, opts LocalOptions) (*Local, error) {
	begin := time.Now()
	l, err := newLocal(opts)
	if err != nil {
		return nil, err
	}
	if err := l.makeDir(); err != nil {
		return nil, err
	}
	if err := l.start(ctx); err != nil {
		l.discard()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("start local PostgreSQL: %w", ctx.Err())
		}
		return nil, fmt.Errorf("start local PostgreSQL: %w", err)
	}
	l.ready.Store(true)
	l.logger.Info("local PostgreSQL started", "dir", l.dir, "port", l.port,
		"pid", l.proc.pid, "version", l.version, "user", l.userName(),
		"elapsed", time.Since(begin).Round(time.Millisecond))
	return l, nil
}

// newLocal validates opts and finds the binaries and the user before anything is created.
func newLocal(opts LocalOptions) (*Local, error) {
	switch n := opts.MaxConnections; {
	case n == 0:
		opts.MaxConnections = defaultMaxConnections
	case n < minMaxConnections || n > maxBackends:
		return nil, fmt.Errorf("invalid MaxConnections %d: use %d to %d, or 0 for %d",
			n, minMaxConnections, maxBackends, defaultMaxConnections)
	}
	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	runAs, err := lookupServerUser()
	if err != nil {
		return nil, err
	}
	password, err := randomPassword()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Local{binDir: binDir, password: password, user: runAs, keep: opts.Keep,
		logger: logger, maxConnections: opts.MaxConnections}, nil
}

func randomPassword() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate superuser password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// ConnString returns a keyword/value connection string for the superuser over the Unix socket,
// where the server trusts the harness's user and no password is needed.
func (l *Local) ConnString() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s", l.dir, l.port, localName, localName)
}

// Port returns the server's TCP port on 127.0.0.1.
func (l *Local) Port() int { return l.port }

// Dir returns the server's temporary directory, which holds the data directory, the socket and
// the logs.
func (l *Local) Dir() string { return l.dir }

// Done returns a channel that is closed when the server process exits, for any reason. If it
// is closed before Close was called, the harness has lost its server.
func (l *Local) Done() <-chan struct{} { return l.proc.done }

// Kind returns PostgreSQL.
func (l *Local) Kind() Kind { return PostgreSQL }

// PoolConfig returns a fresh pgxpool config for at most maxConns connections over the Unix
// socket. It carries the superuser password too, so that it still works if the caller points it
// at 127.0.0.1.
func (l *Local) PoolConfig(maxConns int) (*pgxpool.Config, error) {
	if err := checkMaxConns(maxConns); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(l.ConnString())
	if err != nil {
		return nil, fmt.Errorf("parse local connection string: %w", err)
	}
	cfg.ConnConfig.Password = l.password
	cfg.MaxConns = int32(maxConns)
	return cfg, nil
}

// Describe returns a one-line description of the server: version, directory and port.
func (l *Local) Describe() string {
	return fmt.Sprintf("throwaway PostgreSQL %s in %s (port %d, run as %s)",
		l.version, l.dir, l.port, l.userName())
}

// Close stops the server with a fast shutdown, or kills it if that takes too long, and removes
// its directory. With Keep it leaves both alone. Close is idempotent: later calls return the
// first call's result. Close ignores ctx being done, because an abandoned server would outlive
// the harness. Its own timeouts bound it instead, to about 20 seconds.
func (l *Local) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.stopping.Store(true)
		if l.keep {
			l.logger.Info("local PostgreSQL kept running", "dir", l.dir, "port", l.port)
			return
		}
		l.closeErr = errors.Join(l.stopServer(), l.removeDir())
		if l.closeErr == nil {
			l.logger.Info("local PostgreSQL stopped and removed", "dir", l.dir)
		}
	})
	return l.closeErr
}

// ConnectHint returns shell commands, one per line under a heading each, that connect to the
// server with psql over the socket and over TCP, and that stop the server and remove its
// directory. The TCP command reads the password from a file in the directory, so the hint
// itself never contains it.
func (l *Local) ConnectHint() string {
	socket := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", l.dir, l.port, localName, localName)
	tcp := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s", l.port, localName, localName)
	psql := "psql"
	if isExecutable(filepath.Join(l.binDir, "psql")) {
		psql = shellQuote(filepath.Join(l.binDir, "psql"))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PostgreSQL server in %s, port %d, run as %s.\n", l.dir, l.port, l.userName())
	fmt.Fprintf(&b, "Connect over the Unix socket:\n  %s %s\n", psql, shellQuote(socket))
	fmt.Fprintf(&b, "Connect over TCP (the password is in %s):\n  PGPASSFILE=%s %s %s\n",
		l.pgpassPath(), shellQuote(l.pgpassPath()), psql, shellQuote(tcp))
	fmt.Fprintf(&b, "Stop the server and remove its directory:\n  %s\n", l.stopCommand())
	return b.String()
}

// stopCommand returns a shell command that stops the server, waits for it to exit and removes
// its directory. pg_ctl refuses to run as root, so as root it runs as the server's user.
func (l *Local) stopCommand() string {
	remove := "rm -rf " + shellQuote(l.dir)
	pgCtl := filepath.Join(l.binDir, "pg_ctl")
	if !isExecutable(pgCtl) {
		pid := l.proc.pid
		return fmt.Sprintf("kill -INT %d && while kill -0 %d 2>/dev/null; do sleep 0.1; done && %s",
			pid, pid, remove)
	}
	stop := fmt.Sprintf("%s -D %s stop", shellQuote(pgCtl), shellQuote(l.dataDir()))
	if l.user != nil {
		stop = fmt.Sprintf("runuser -u %s -- %s", shellQuote(l.user.name), stop)
	}
	return stop + " && " + remove
}

func (l *Local) dataDir() string    { return filepath.Join(l.dir, dataSubdir) }
func (l *Local) serverLog() string  { return filepath.Join(l.dir, serverLogName) }
func (l *Local) pgpassPath() string { return filepath.Join(l.dir, pgpassName) }

func (l *Local) userName() string {
	if l.user != nil {
		return l.user.name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprintf("uid %d", os.Geteuid())
}

// shellQuote quotes s for a POSIX shell unless it consists only of characters that need none.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"+
			"0123456789_-./:@%+,", r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
