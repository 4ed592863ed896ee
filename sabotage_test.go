package main

import (
	"path/filepath"
	"strings"
	"testing"

	"parity/internal/pgtest"
	"parity/verify"
)

// TestConsistencySabotageCaught runs each deliberately broken engine on the hot-account
// scenario and asserts that the audit catches it: the run is inconsistent, the checks that
// the defect must break fail, and a witness names an offending account or order.
func TestConsistencySabotageCaught(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	tests := []struct {
		kind  string
		catch []string
	}{
		{"lost-update", []string{"balances-match-ledger", "cash-conserved"}},
		{"unconditional-debit", []string{"replay-matches", "mid-run-snapshots"}},
		{"split-fill", []string{"ledger-balanced", "cash-conserved"}},
		{"missing-entry", []string{"ledger-balanced", "balances-match-ledger"}},
		{"blind-retry", []string{"history-matches"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdict.json")
			code, stdout, stderr := runParity(t, "run", "--scenario", "hot-account", "--sabotage", tt.kind,
				"--dsn", dsn, "--json", path, "--progress", "never", "--log-level", "error")
			if code != exitInconsistent {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitInconsistent, stdout, stderr)
			}
			if !strings.Contains(stdout, "SABOTAGED ENGINE ("+tt.kind+")") {
				t.Errorf("report does not label the sabotage:\n%s", stdout)
			}
			run := readVerdict(t, path)
			if run.Sabotage != tt.kind || run.Verdict != verify.Inconsistent {
				t.Errorf("JSON sabotage %q verdict %s, want %q inconsistent", run.Sabotage, run.Verdict, tt.kind)
			}
			failed := map[string]verify.Result{}
			for _, c := range run.Checks {
				if c.Verdict == verify.Fail {
					failed[c.Name] = c
				}
			}
			for _, name := range tt.catch {
				c, ok := failed[name]
				if !ok {
					t.Errorf("%s did not fail; failed checks: %v", name, keys(failed))
					continue
				}
				if len(c.Witnesses) == 0 {
					t.Errorf("%s failed without a witness", name)
				}
			}
			if !namesAccountOrOrder(failed) {
				t.Errorf("no failed check names an offending account or order: %+v", failed)
			}
		})
	}
}

func keys(m map[string]verify.Result) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func namesAccountOrOrder(failed map[string]verify.Result) bool {
	for _, c := range failed {
		for _, w := range c.Witnesses {
			if (w.Kind == "account" || w.Kind == "order") && w.ID != "" {
				return true
			}
		}
	}
	return false
}

// TestConsistencyLostCommitsResolved runs the correct engine on the same scenario while
// connections break at COMMIT, and asserts that it stays consistent: every lost COMMIT is
// resolved by a lookup, so no order is lost or applied twice.
func TestConsistencyLostCommitsResolved(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	path := filepath.Join(t.TempDir(), "verdict.json")
	code, stdout, stderr := runParity(t, "run", "--scenario", "hot-account", "--lose-commits", "200",
		"--dsn", pgtest.ConnString(t), "--json", path, "--progress", "never", "--log-level", "error")
	if code != exitConsistent {
		t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	run := readVerdict(t, path)
	if run.Orders.LostCommits == 0 {
		t.Fatal("no COMMIT reply was lost: the fault injection did nothing")
	}
	if run.Orders.Resolved != run.Orders.LostCommits {
		t.Errorf("%d lost COMMITs, %d resolved by lookup; want all resolved", run.Orders.LostCommits, run.Orders.Resolved)
	}
	for _, c := range run.Checks {
		if c.Verdict != verify.Pass {
			t.Errorf("check %s: %s (%s %s)", c.Name, c.Verdict, c.Found, c.Error)
		}
	}
}
