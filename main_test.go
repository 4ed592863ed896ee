package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parity/internal/pgtest"
	"parity/report"
	"parity/scenario"
	"parity/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runParity runs the command line in-process and returns its exit code and output.
func runParity(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func readVerdict(t *testing.T, path string) *report.Run {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read JSON verdict: %v", err)
	}
	var run report.Run
	if err := json.Unmarshal(data, &run); err != nil {
		t.Fatalf("parse JSON verdict: %v", err)
	}
	return &run
}

// TestConsistency runs every shipped scenario against a real PostgreSQL and asserts a
// consistent verdict from every check, and that the hot scenarios really contended.
func TestConsistency(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	file, err := loadScenarios("")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range file.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdict.json")
			code, stdout, stderr := runParity(t, "run", "--scenario", sc.Name, "--dsn", dsn,
				"--json", path, "--progress", "never", "--color", "never", "--log-level", "warn")
			if code != exitConsistent {
				t.Fatalf("exit code %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			run := readVerdict(t, path)
			if run.Verdict != verify.Consistent {
				t.Errorf("verdict %s, want consistent", run.Verdict)
			}
			for _, c := range run.Checks {
				if c.Verdict != verify.Pass {
					t.Errorf("check %s: %s (%s %s)", c.Name, c.Verdict, c.Found, c.Error)
				}
			}
			o := run.Orders
			if o.Fired != sc.TotalOrders() || o.Committed+o.Skipped+o.GaveUp != o.Fired {
				t.Errorf("orders %+v: want all %d fired, each committed, skipped or given up", o, sc.TotalOrders())
			}
			if int(run.Markets) != sc.Markets || len(run.Settlement) != sc.Markets {
				t.Errorf("%d markets, %d settled; want %d", run.Markets, len(run.Settlement), sc.Markets)
			}
			if run.Trades == 0 {
				t.Error("no trades: the scenario never crossed")
			}
			if sc.ExpectContention && run.Attempts.Retries == 0 && o.UnfundedFills == 0 {
				t.Errorf("hot scenario without contention: %d retries, %d skipped fills",
					run.Attempts.Retries, o.UnfundedFills)
			}
			if !strings.Contains(stdout, "CONSISTENT") {
				t.Errorf("report does not show the verdict:\n%s", stdout)
			}
		})
	}
}

// TestConsistencyHotAccountFundsExactly checks the hot account's promise: its cash funds
// exactly as many fills as it can pay for, however many of its orders race.
func TestConsistencyHotAccountFundsExactly(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	file, err := loadScenarios("")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := file.Lookup("hot-account")
	if err != nil {
		t.Fatal(err)
	}
	whale, buys, sells := whaleFlows(t, sc)
	funded := whale.Balance / (buys.Price.Max * buys.Quantity.Max)
	if funded >= buys.Count || funded >= sells.Count {
		t.Fatalf("scenario changed: the whale funds %d of %d buys against %d sells", funded, buys.Count, sells.Count)
	}

	path := filepath.Join(t.TempDir(), "verdict.json")
	code, stdout, stderr := runParity(t, "run", "--scenario", "hot-account", "--dsn", pgtest.ConnString(t),
		"--json", path, "--progress", "never", "--log-level", "warn")
	if code != exitConsistent {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout, stderr)
	}
	run := readVerdict(t, path)
	if run.Contracts != funded {
		t.Errorf("%d contracts traded, want exactly the %d the whale can fund", run.Contracts, funded)
	}
	if run.Orders.UnfundedFills == 0 {
		t.Error("no fill was skipped: the whale's orders never outran its cash")
	}
}

func whaleFlows(t *testing.T, sc *scenario.Scenario) (scenario.AccountGroup, scenario.Flow, scenario.Flow) {
	t.Helper()
	var whale scenario.AccountGroup
	for _, g := range sc.Accounts {
		if g.Count == 1 {
			whale = g
		}
	}
	var buys, sells scenario.Flow
	for _, f := range sc.Flows {
		switch {
		case f.Group == whale.Name && f.Side == scenario.Buy:
			buys = f
		case f.Group != whale.Name && f.Side == scenario.Sell:
			sells = f
		}
	}
	if whale.Name == "" || buys.Count == 0 || sells.Count == 0 {
		t.Fatalf("hot-account has no single-account group buying against others selling")
	}
	return whale, buys, sells
}

// TestRunWithNoFlags is the README's first command: a throwaway server, the proof scenario.
func TestRunWithNoFlags(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skipf("%s is set, so this machine may lack the server binaries a throwaway server needs", pgtest.EnvDSN)
	}
	t.Setenv("PARITY_DSN", "")
	code, stdout, stderr := runParity(t, "run")
	if code != exitConsistent {
		t.Fatalf("exit code %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"scenario proof", "orders fired       216 of 216", "markets            3",
		"ledger sum         0 cents", "negative balances  0", "CONSISTENT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}
