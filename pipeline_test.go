package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/internal/pgtest"
	"parity/scenario"
)

func TestFailExitCodes(t *testing.T) {
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}
	tests := []struct {
		name string
		err  error
		code int
	}{
		{"usage", usageErrorf("bad flag"), exitUsage},
		{"invalid scenario", fmt.Errorf("load: %w", scenario.ErrInvalid), exitUsage},
		{"interrupted", fmt.Errorf("fire orders: %w", context.Canceled), exitInterrupted},
		{"server lost while cancelling", fmt.Errorf("%w: %w", errServerLost, context.Canceled), exitInfra},
		{"database lost while cancelling", fmt.Errorf("%w: %w", errDatabaseLost, context.Canceled), exitInfra},
		{"connections lost", fmt.Errorf("fire orders: %w", engine.ErrConnectionLost), exitInfra},
		{"anything else", errors.New("disk full"), exitInfra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.fail(tt.err); got != tt.code {
				t.Errorf("exit code %d, want %d", got, tt.code)
			}
		})
	}
}

func TestWatchDatabaseGivesUp(t *testing.T) {
	config, err := pgxpool.ParseConfig("postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		watchDatabase(ctx, pool, 20*time.Millisecond, cancel, slog.New(slog.DiscardHandler))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the watchdog did not give up on a database that refuses connections")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errDatabaseLost) {
		t.Errorf("cause %v, want errDatabaseLost", cause)
	}
}

// TestRunInterrupted stops a slow run the way a signal does, with a cause on the context,
// and expects the partial report, the JSON verdict marked interrupted and exit code 130.
func TestRunInterrupted(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "slow.yaml")
	err := os.WriteFile(file, []byte(`scenarios:
  - name: slow
    rate: 40
    accounts:
      - {name: traders, count: 4, balance: 100000}
    flows:
      - {count: 2000, group: traders, price: 50, quantity: 1}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(3*time.Second, func() { cancel(errors.New("interrupt signal received")) })
	path := filepath.Join(dir, "verdict.json")
	var stdout, stderr strings.Builder
	code := Main(ctx, []string{"run", "--file", file, "--scenario", "slow", "--dsn", pgtest.ConnString(t),
		"--json", path, "--progress", "never", "--log-level", "error"}, &stdout, &stderr)
	if code != exitInterrupted {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInterrupted, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "(interrupted)") {
		t.Errorf("no partial report marked interrupted:\n%s", stdout.String())
	}
	run := readVerdict(t, path)
	if !run.Interrupted || run.Orders.Fired == 0 || run.Orders.Fired >= 2000 {
		t.Errorf("verdict interrupted %v with %d of 2000 orders fired; want interrupted part-way", run.Interrupted, run.Orders.Fired)
	}
}
