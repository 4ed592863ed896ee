package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/internal/pgtest"
	"parity/schema"
	"parity/verify"
)

// keepRun runs the proof scenario with --keep against dsn and returns the kept namespace,
// which the test's cleanup drops.
func keepRun(t *testing.T, dsn string, pool *pgxpool.Pool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "verdict.json")
	code, stdout, stderr := runParity(t, "run", "--keep", "--dsn", dsn, "--json", path,
		"--progress", "never", "--log-level", "warn")
	if code != exitConsistent {
		t.Fatalf("parity run --keep: exit code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	ns := readVerdict(t, path).Namespace
	t.Cleanup(func() {
		if err := schema.Drop(context.Background(), pool, ns); err != nil {
			t.Errorf("drop kept namespace %s: %v", ns, err)
		}
	})
	return ns
}

// TestProofKeptNamespace proves a namespace kept by parity run, then breaks its books in
// two ways and expects each exit code: 0 consistent, 1 inconsistent, 4 inconclusive.
func TestProofKeptNamespace(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	pool := pgtest.Pool(t, 2)
	ns := keepRun(t, dsn, pool)

	path := filepath.Join(t.TempDir(), "proof.json")
	code, stdout, stderr := runParity(t, "proof", "--namespace", ns, "--dsn", dsn, "--json", path)
	if code != exitConsistent {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	p := decodeProof(t, []byte(stdout))
	requireConsistent(t, p)
	if p.Namespace != ns || p.Phase != "final" || p.Backend != "postgresql" {
		t.Errorf("namespace %q, phase %q, backend %q; want %q, final, postgresql",
			p.Namespace, p.Phase, p.Backend, ns)
	}
	if p.Trades == 0 || p.LedgerImbalance != 0 || p.NegativeBalances != 0 || !p.CashConserved {
		t.Errorf("trades %d, ledger imbalance %d, negative balances %d, cash conserved %v",
			p.Trades, p.LedgerImbalance, p.NegativeBalances, p.CashConserved)
	}
	if !strings.Contains(stdout, "\n  \"namespace\"") {
		t.Errorf("stdout is not indented JSON:\n%s", stdout)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read --json file: %v", err)
	}
	if !bytes.Equal(written, []byte(stdout)) {
		t.Errorf("--json file differs from stdout:\n%s", written)
	}

	// A cent moved without a ledger entry: inconsistent, exit 1.
	moveCent(t, pool, ns)
	code, stdout, stderr = runParity(t, "proof", "--namespace", ns, "--dsn", dsn)
	if code != exitInconsistent {
		t.Fatalf("after a cent moved: exit code %d, want 1\nstderr:\n%s", code, stderr)
	}
	p = decodeProof(t, []byte(stdout))
	if p.Consistent || checkVerdict(p, "balances-match-ledger") != verify.Fail {
		t.Errorf("after a cent moved: consistent=%v, balances-match-ledger %q; want false, fail",
			p.Consistent, checkVerdict(p, "balances-match-ledger"))
	}

	// Without the positions table, the checks that read it cannot decide. The cent is put
	// back first, so no other check fails: inconclusive, exit 4.
	restoreCent(t, pool, ns)
	dropTable(t, pool, ns, schema.PositionsTable)
	code, stdout, stderr = runParity(t, "proof", "--namespace", ns, "--dsn", dsn)
	if code != exitInconclusive {
		t.Fatalf("without positions: exit code %d, want 4\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	p = decodeProof(t, []byte(stdout))
	if p.Verdict != verify.Inconclusive || checkVerdict(p, "contracts-zero-sum") != verify.Unknown {
		t.Errorf("without positions: verdict %s, contracts-zero-sum %q; want inconclusive, unknown",
			p.Verdict, checkVerdict(p, "contracts-zero-sum"))
	}
}

// restoreCent undoes moveCent on a namespace that nothing else writes to: it sets every
// account's free cash back to the replay of its ledger.
func restoreCent(t *testing.T, pool *pgxpool.Pool, ns string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `UPDATE `+pgx.Identifier{ns, schema.AccountsTable}.Sanitize()+
		` a SET free = (SELECT COALESCE(sum(amount), 0) FROM `+pgx.Identifier{ns, schema.LedgerTable}.Sanitize()+
		` l WHERE l.account_id = a.id AND l.bucket = 'free')`)
	if err != nil {
		t.Fatalf("restore balances of %s: %v", ns, err)
	}
}

func TestProofErrors(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	pool := pgtest.Pool(t, 2)
	foreign := schema.NewName(time.Now())
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA "+foreign); err != nil {
		t.Fatalf("create a schema without Parity's marker: %v", err)
	}
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+foreign); err != nil {
			t.Errorf("drop schema %s: %v", foreign, err)
		}
	})
	missing := schema.NewName(time.Now().Add(-time.Hour))

	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"missing namespace", []string{"--namespace", missing, "--dsn", dsn}, []string{missing, "not found"}, nil},
		{"foreign schema", []string{"--namespace", foreign, "--dsn", dsn}, []string{foreign, "parity_run"}, nil},
		{"no namespace flag", []string{"--dsn", dsn}, []string{"missing --namespace"}, nil},
		{"invalid namespace", []string{"--namespace", "Parity-1", "--dsn", dsn}, []string{`"Parity-1"`}, nil},
		{"no target", []string{"--namespace", missing}, []string{"--dsn", "--keep-db"}, nil},
		{"region without endpoint", []string{"--namespace", missing, "--dsn", dsn, "--region", "us-east-1"},
			[]string{"--dsql-endpoint"}, nil},
		{"malformed dsn keeps password secret",
			[]string{"--namespace", missing, "--dsn", "postgres://u:hunter2secret@127.0.0.1:notaport/db"},
			[]string{"--dsn"}, []string{"hunter2secret"}},
		{"json in missing directory", []string{"--namespace", missing, "--dsn", dsn, "--json", "/nonexistent/p.json"},
			[]string{"/nonexistent"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runParity(t, append([]string{"proof"}, tt.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, exitUsage, stdout, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout is not empty on an error:\n%s", stdout)
			}
			checkMessages(t, stdout, stderr, tt.want, tt.notWant)
		})
	}
}

func TestProofFromEnvironment(t *testing.T) {
	t.Setenv("PARITY_DSN", "postgres://u:hunter2secret@127.0.0.1:notaport/db")
	code, stdout, stderr := runParity(t, "proof", "--namespace", "parity_x")
	if code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
	if !strings.Contains(stderr, "PARITY_DSN") {
		t.Errorf("the error does not name PARITY_DSN:\n%s", stderr)
	}
	if strings.Contains(stdout+stderr, "hunter2secret") {
		t.Errorf("output contains the password:\n%s%s", stdout, stderr)
	}
}
