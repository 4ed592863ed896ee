package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLineErrors(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	badFile := filepath.Join(t.TempDir(), "bad.yaml")
	err := os.WriteFile(badFile, []byte(`scenarios:
  - name: broken
    markets: 1
    accounts:
      - {name: traders, count: 2, balance: 100}
    flows:
      - {count: 5, group: traders, side: buy, price: 0, quantity: 1}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		code    int
		want    []string
		notWant []string
	}{
		{"no command", nil, exitUsage, []string{"Usage:"}, nil},
		{"unknown command", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`}, nil},
		{"unknown flag", []string{"run", "--bogus"}, exitUsage, []string{"bogus", "parity help run"}, nil},
		{"stray argument", []string{"run", "proof"}, exitUsage, []string{`unexpected argument "proof"`}, nil},
		{"unknown scenario", []string{"run", "--scenario", "nope"}, exitUsage, []string{"nope", "proof", "hot-market"}, nil},
		{"invalid scenario file", []string{"run", "--file", badFile}, exitUsage,
			[]string{"bad.yaml:7:", `scenario "broken"`, "price", "1..99"}, nil},
		{"missing scenario file", []string{"run", "--file", "/nonexistent/s.yaml"}, exitUsage, []string{"/nonexistent/s.yaml"}, nil},
		{"zero concurrency", []string{"run", "--concurrency", "0"}, exitUsage, []string{"--concurrency 0"}, nil},
		{"bad isolation", []string{"run", "--isolation", "snapshot"}, exitUsage, []string{`"snapshot"`, "repeatable-read"}, nil},
		{"bad schema", []string{"run", "--schema", "flat"}, exitUsage, []string{`"flat"`, "distinct-rows"}, nil},
		{"bad progress", []string{"run", "--progress", "sometimes"}, exitUsage, []string{`"sometimes"`}, nil},
		{"json in missing directory", []string{"run", "--json", "/nonexistent/dir/v.json"}, exitUsage, []string{"/nonexistent/dir"}, nil},
		{"two targets", []string{"run", "--dsn", "postgres://127.0.0.1/x", "--dsql-endpoint", "abc.dsql.us-east-1.on.aws"}, exitUsage, []string{"choose one"}, nil},
		{"keep-db with dsn", []string{"run", "--keep-db", "--dsn", "postgres://127.0.0.1/x"}, exitUsage, []string{"--keep"}, nil},
		{"malformed dsn keeps password secret", []string{"run", "--dsn", "postgres://u:hunter2secret@127.0.0.1:notaport/db"},
			exitUsage, []string{"--dsn"}, []string{"hunter2secret"}},
		{"unreachable server keeps password secret", []string{"run", "--dsn", "postgres://u:hunter2secret@127.0.0.1:1/db?connect_timeout=5"},
			exitInfra, []string{"connect to"}, []string{"hunter2secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runParity(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			checkMessages(t, stdout, stderr, tt.want, tt.notWant)
		})
	}
}

func TestMissingServerBinaries(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	t.Setenv("PARITY_PG_BIN", t.TempDir())
	path := filepath.Join(t.TempDir(), "verdict.json")
	code, _, stderr := runParity(t, "run", "--json", path)
	if code != exitInfra {
		t.Errorf("exit code %d, want %d", code, exitInfra)
	}
	for _, want := range []string{"apt-get install postgresql", "--dsn"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed run left a JSON verdict behind (stat: %v)", err)
	}
}

func TestScenariosCommand(t *testing.T) {
	code, stdout, stderr := runParity(t, "scenarios")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	for _, name := range []string{"proof", "hot-market", "hot-account", "many-markets"} {
		if !strings.Contains(stdout, name) {
			t.Errorf("list lacks %s:\n%s", name, stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"help", "run"}, {"help", "scenarios"}, {"run", "-h"}} {
		code, stdout, stderr := runParity(t, args...)
		if code != 0 {
			t.Errorf("%v: exit code %d: %s", args, code, stderr)
		}
		if !strings.Contains(stdout, "Usage") {
			t.Errorf("%v: no usage on stdout:\n%s", args, stdout)
		}
	}
}

// checkMessages checks that stderr contains every string of want and that neither output
// contains any of notWant, such as a password.
func checkMessages(t *testing.T, stdout, stderr string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	for _, w := range notWant {
		if strings.Contains(stdout+stderr, w) {
			t.Errorf("output contains %q:\n%s%s", w, stdout, stderr)
		}
	}
}
