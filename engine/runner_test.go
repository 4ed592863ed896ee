package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"parity/scenario"
)

func TestClassify(t *testing.T) {
	pg := func(code, msg string) error { return &pgconn.PgError{Code: code, Message: msg} }
	tests := []struct {
		name  string
		err   error
		class Class
		label string
	}{
		{"nil", nil, ClassNone, ""},
		{"serialization failure", pg("40001", "could not serialize access"), ClassConflict, "40001"},
		{"wrapped twice", fmt.Errorf("commit: %w", fmt.Errorf("order: %w", pg("40001", "x"))), ClassConflict, "40001"},
		{"joined", errors.Join(errors.New("other"), pg("40001", "x")), ClassConflict, "40001"},
		{"dsql data conflict", pg("40001", "change conflicts with another transaction (OC000)"), ClassConflict, "40001/OC000"},
		{"dsql schema conflict", pg("40001", "schema has been updated by another transaction (OC001)"), ClassConflict, "40001/OC001"},
		{"deadlock", fmt.Errorf("debit: %w", pg("40P01", "deadlock detected")), ClassConflict, "40P01"},
		{"unique violation", fmt.Errorf("insert: %w", pg("23505", "duplicate key")), ClassPermanent, ""},
		{"dsql limit", pg("54000", "transaction row limit exceeded"), ClassPermanent, ""},
		{"syntax", pg("42601", "syntax error"), ClassPermanent, ""},
		{"message alone does not count", errors.New("could not serialize access (40001)"), ClassPermanent, ""},
		{"admin shutdown", pg("57P01", "terminating connection"), ClassConnection, ""},
		{"eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ClassConnection, ""},
		{"net error", &net.OpError{Op: "read", Err: errors.New("connection reset")}, ClassConnection, ""},
		{"closed conn", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), ClassConnection, ""},
		{"canceled", fmt.Errorf("run: %w", context.Canceled), ClassCanceled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.class {
				t.Errorf("Classify = %s, want %s", got, tt.class)
			}
			if got := ConflictLabel(tt.err); got != tt.label {
				t.Errorf("ConflictLabel = %q, want %q", got, tt.label)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	p := scenario.Retry{MaxAttempts: 50, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 300 * time.Millisecond}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 70; n++ {
		ceiling := p.MaxBackoff
		if n <= 7 {
			ceiling = min(p.MaxBackoff, p.BaseBackoff<<(n-1))
		}
		var most time.Duration
		for range 2000 {
			d := Backoff(p, n, rng)
			if d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: backoff %v outside [0, %v)", n, d, ceiling)
			}
			most = max(most, d)
		}
		// Full jitter spreads over the whole window, not a narrow band at its top or bottom.
		if most < ceiling/2 {
			t.Errorf("attempt %d: largest of 2000 draws %v, want above half of %v", n, most, ceiling)
		}
	}
}

func TestBackoffZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if d := Backoff(scenario.Retry{MaxAttempts: 3}, 2, rng); d != 0 {
		t.Errorf("backoff with zero bounds = %v, want 0", d)
	}
}
