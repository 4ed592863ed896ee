package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parity/verify"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func sampleRun() *Run {
	return &Run{
		Format: Format, Tool: "parity", Verdict: verify.Inconsistent, Scenario: "proof",
		Description: "All orders at once.", Seed: 42,
		Target: Target{Kind: "postgresql", Description: "throwaway PostgreSQL 15", Throwaway: true},
		Schema: "distinct-rows", Isolation: "repeatable-read", Namespace: "parity_20260101_000000_abcdef",
		Sabotage: "missing-entry", Concurrency: 216, Markets: 3, Accounts: 24,
		Orders: Orders{Total: 216, Fired: 216, Committed: 200, Skipped: 10, GaveUp: 6,
			UnfundedFills: 12, Resolved: 1},
		Trades: 170, Contracts: 536,
		Ledger:     Ledger{Sum: -1234, CashBefore: 2400000, CashAfter: 2398766},
		Throughput: 99.75, Durations: Durations{Load: 2.165},
		Latency: Latency{Count: 216, P50: 1101.823, P95: 1640.447, P99: 1924.095, Max: 2162.687},
		Attempts: Attempts{Distribution: map[string]int64{"1": 6, "2": 5, "3": 5, "4": 150, "12": 34},
			Total: 1678, Retries: 1462, GaveUp: 6, Conflicts: map[string]int64{"40001": 1462, "40P01": 3},
			BackoffSeconds: 97.19},
		Errors:     []ErrorCount{{"commit: unexpected EOF", 6}},
		Settlement: []Settlement{{"market-1", "yes", 10, 2600, 2600}, {"market-2", "no", 8, 0, 1200}},
		Checks: []verify.Result{
			{Name: "ledger-balanced", Verdict: verify.Fail, Checked: 197, Violations: 7,
				Expected: "every journal sums to 0", Found: "7 unbalanced of 197 journals",
				Witnesses: []verify.Witness{{Kind: "journal", ID: "0b5d", Name: "fill",
					Values: []verify.Value{{Name: "sum", Value: 42}, {Name: "entries", Value: 3}}}}},
			{Name: "contention", Verdict: verify.Pass, Found: "1462 retries, 12 skipped fills"},
			{Name: "outcomes-known", Verdict: verify.Unknown, Error: "6 orders gave up"},
		},
	}
}

func TestWriteTextGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleRun(), Style{}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("report differs from %s (run with -update after an intended change):\n%s", golden, got)
	}
}

func TestWriteTextNoColorCodes(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleRun(), Style{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\x1b[") {
		t.Error("uncoloured report contains escape codes")
	}
	buf.Reset()
	if err := WriteText(&buf, sampleRun(), Style{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\x1b[") {
		t.Error("coloured report contains no escape codes")
	}
}

func TestWriteJSONFields(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleRun()); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"format", "verdict", "scenario", "seed", "orders", "markets", "trades", "checks", "latency_ms", "attempts"} {
		if _, ok := got[key]; !ok {
			t.Errorf("JSON verdict has no %q", key)
		}
	}
	orders, _ := got["orders"].(map[string]any)
	for _, key := range []string{"fired", "committed", "skipped", "failed", "gave_up", "unknown"} {
		if _, ok := orders[key]; !ok {
			t.Errorf("orders has no %q", key)
		}
	}
	checks, _ := got["checks"].([]any)
	if len(checks) != 3 {
		t.Fatalf("%d checks, want 3", len(checks))
	}
	first, _ := checks[0].(map[string]any)
	if first["name"] != "ledger-balanced" || first["verdict"] != "fail" || first["witnesses"] == nil {
		t.Errorf("first check = %v", first)
	}
}

func TestWriteJSONFileReplacesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verdict.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONFile(path, sampleRun()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Errorf("file is not valid JSON: %q", data)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the verdict: a temporary file was left", len(entries))
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{Count(0), "0"},
		{Count(999), "999"},
		{Count(1000), "1,000"},
		{Count(-1234567), "-1,234,567"},
		{Cents(2400000), "2,400,000 cents"},
		{ms(1101.823), "1100"},
		{ms(12.345), "12.3"},
		{ms(0.5234), "0.523"},
		{ms(0), "0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
