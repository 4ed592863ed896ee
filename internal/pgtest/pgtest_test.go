package pgtest_test

import (
	"context"
	"os"
	"testing"

	"parity/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPool_RunsQuery(t *testing.T) {
	pool := pgtest.Pool(t, 4)
	var sum int
	if err := pool.QueryRow(context.Background(), "SELECT 40 + 2").Scan(&sum); err != nil {
		t.Fatalf("query: %v", err)
	}
	if sum != 42 {
		t.Errorf("SELECT 40 + 2 = %d, want 42", sum)
	}
	if got := pool.Config().MaxConns; got != 4 {
		t.Errorf("pool MaxConns = %d, want 4", got)
	}
}

func TestConnString_SameServerEveryCall(t *testing.T) {
	first := pgtest.ConnString(t)
	second := pgtest.ConnString(t)
	if first != second {
		t.Errorf("ConnString changed between calls: %q, then %q", first, second)
	}
}

func TestConnString_ThrowawayServerSettings(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skipf("%s is set, so the tests use that server, not a throwaway one", pgtest.EnvDSN)
	}
	pool := pgtest.Pool(t, 1)
	ctx := context.Background()
	var maxConnections, database string
	err := pool.QueryRow(ctx, "SELECT current_setting('max_connections'), current_database()").
		Scan(&maxConnections, &database)
	if err != nil {
		t.Fatalf("query settings: %v", err)
	}
	if maxConnections != "500" {
		t.Errorf("max_connections = %s, want 500", maxConnections)
	}
	if database != "parity" {
		t.Errorf("current_database() = %s, want parity", database)
	}
}

func TestPool_ClosedAfterTest(t *testing.T) {
	var pool interface{ Ping(context.Context) error }
	t.Run("open", func(t *testing.T) {
		pool = pgtest.Pool(t, 1)
	})
	if err := pool.Ping(context.Background()); err == nil {
		t.Error("pool still answers a ping after its test finished; want it closed")
	}
}
