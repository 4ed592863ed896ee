// Package pgtest gives tests a real PostgreSQL server: the one named by PARITY_TEST_DSN, or else
// a throwaway server that the test binary starts on first use and stops when its tests are done.
//
// A package whose tests use it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"parity/target"
)

// EnvDSN names the environment variable with the connection string of an existing server for
// tests. When it is set, no server is started.
const EnvDSN = "PARITY_TEST_DSN"

// maxConnections is the throwaway server's max_connections, enough for the concurrent tests of
// one package with a few hundred workers each.
const maxConnections = 500

// Time limits for starting and stopping the throwaway server.
const (
	startTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
)

// The throwaway server, shared by all tests of one test binary.
var (
	once     sync.Once
	local    *target.Local
	connStr  string
	startErr error
)

// Main runs the tests, then stops the server that ConnString started, if any, and exits with
// the tests' exit code, or 1 if stopping failed.
func Main(m *testing.M) {
	code := m.Run()
	if local != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		err := local.Close(ctx)
		cancel()
		if err != nil {
			slog.Error("stop the test PostgreSQL server", "dir", local.Dir(), "err", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// ConnString returns the connection string of the test server: PARITY_TEST_DSN if set, else
// that of a throwaway server with max_connections 500, started on the first call. If no server
// can be started, the test fails with the reason: these tests need a real server, so they are
// not skipped.
func ConnString(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	once.Do(start)
	if startErr != nil {
		t.Fatalf("no PostgreSQL server for tests (set %s to use an existing one): %v",
			EnvDSN, startErr)
	}
	return connStr
}

func start() {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	l, err := target.StartLocal(ctx, target.LocalOptions{MaxConnections: maxConnections})
	if err != nil {
		startErr = err
		return
	}
	local = l
	connStr = l.ConnString()
}

// Pool returns a pool of at most maxConns connections to the test server, closed when the test
// and its subtests finish. It pings the server once, so a test fails here rather than later if
// the server cannot be reached.
func Pool(t testing.TB, maxConns int) *pgxpool.Pool {
	t.Helper()
	dsn, err := target.ParseDSN(ConnString(t))
	if err != nil {
		t.Fatalf("test server: %v", err)
	}
	cfg, err := dsn.PoolConfig(maxConns)
	if err != nil {
		t.Fatalf("test pool: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open test pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("ping test server: %v", err)
	}
	return pool
}
