package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/internal/pgtest"
	"parity/schema"
	"parity/verify"
)

// syncBuffer is a bytes.Buffer that a command writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// servingPattern matches the line serve prints once it listens, and captures the base URL.
var servingPattern = regexp.MustCompile(`Serving the proof of \S+ at (http://\S+)/api/proof`)

// serveRun is a parity serve command running in-process.
type serveRun struct {
	url            string // base URL, without a path
	cancel         context.CancelFunc
	exited         chan struct{} // closed when Main returns
	code           int           // Main's exit code; read after exited closes
	stdout, stderr *syncBuffer
}

// startServe runs parity serve on a free loopback port with args added, and waits until it
// listens. The test's cleanup stops it if the test did not.
func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveRun{
		cancel: cancel, exited: make(chan struct{}), stdout: &syncBuffer{}, stderr: &syncBuffer{},
	}
	args = append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	go func() {
		defer close(s.exited)
		s.code = Main(ctx, args, s.stdout, s.stderr)
	}()
	t.Cleanup(func() { s.stop(t) })

	deadline := time.After(2 * time.Minute)
	for {
		if m := servingPattern.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("serve exited with code %d before listening\nstdout:\n%s\nstderr:\n%s",
				s.code, s.stdout, s.stderr)
		case <-deadline:
			t.Fatalf("serve did not print its URL within 2 minutes\nstderr:\n%s", s.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop cancels the command's context, as Ctrl-C does, and returns its exit code.
func (s *serveRun) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		t.Fatalf("serve did not stop within a minute of cancellation\nstderr:\n%s", s.stderr)
	}
	return s.code
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// request sends a request to the server and returns the response with its body read.
func request(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", method, url, err)
	}
	return resp, body
}

// proofFields are the keys every proof document must carry.
var proofFields = []string{"backend", "trades", "ledger_imbalance", "negative_balances",
	"cash_conserved", "checks", "consistent"}

// getProof fetches /api/proof, checks that it is a 200 JSON proof with every field, and
// decodes it.
func getProof(t *testing.T, s *serveRun) *verify.Proof {
	t.Helper()
	resp, body := request(t, http.MethodGet, s.url+"/api/proof")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/proof: status %d, want 200: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	return decodeProof(t, body)
}

// decodeProof checks that body is a proof document with every field and decodes it.
func decodeProof(t *testing.T, body []byte) *verify.Proof {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("proof is not a JSON object: %v\n%s", err, body)
	}
	for _, name := range proofFields {
		if _, ok := fields[name]; !ok {
			t.Errorf("proof lacks %q: %s", name, body)
		}
	}
	var p verify.Proof
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode proof: %v\n%s", err, body)
	}
	if len(p.Checks) == 0 {
		t.Errorf("proof has no checks: %s", body)
	}
	for _, c := range p.Checks {
		if c.Name == "" || c.Verdict == "" {
			t.Errorf("check without a name or verdict: %+v", c)
		}
	}
	return &p
}

// requireConsistent fails the test unless every check of p passed.
func requireConsistent(t *testing.T, p *verify.Proof) {
	t.Helper()
	if !p.Consistent || p.Verdict != verify.Consistent {
		t.Fatalf("proof is %s (consistent=%v), want consistent: %+v", p.Verdict, p.Consistent, p.Checks)
	}
	for _, c := range p.Checks {
		if c.Verdict != verify.Pass {
			t.Errorf("check %s: %s (%s %s)", c.Name, c.Verdict, c.Found, c.Error)
		}
	}
}

func checkVerdict(p *verify.Proof, name string) verify.Verdict {
	for _, c := range p.Checks {
		if c.Name == name {
			return c.Verdict
		}
	}
	return ""
}

func namespaceExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	err := pool.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatalf("look up namespace %s: %v", name, err)
	}
	return exists
}

// moveCent moves one cent of free cash from the richest account to another without a
// ledger entry. Total cash stays the same, but two balances no longer replay from the
// ledger. A running load may lock the same rows, so moveCent retries a deadlock.
func moveCent(t *testing.T, pool *pgxpool.Pool, ns string) {
	t.Helper()
	accounts := pgx.Identifier{ns, schema.AccountsTable}.Sanitize()
	sql := fmt.Sprintf(`WITH pair AS (SELECT id, row_number() OVER (ORDER BY free DESC, id) AS n
			FROM %[1]s ORDER BY free DESC, id LIMIT 2)
		UPDATE %[1]s a SET free = a.free + CASE pair.n WHEN 1 THEN -1 ELSE 1 END
		FROM pair WHERE a.id = pair.id`, accounts)
	for attempt := 1; ; attempt++ {
		tag, err := pool.Exec(context.Background(), sql)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == "40P01" && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatalf("move a cent in %s: %v", ns, err)
		}
		if tag.RowsAffected() != 2 {
			t.Fatalf("move a cent in %s: %d accounts changed, want 2", ns, tag.RowsAffected())
		}
		return
	}
}

// TestServeProofIsLive starts serve with a background load and reads the proof while
// orders commit: it stays consistent while trades grow, turns inconsistent once the books
// are corrupted, and the namespace is dropped when serve stops.
func TestServeProofIsLive(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	pool := pgtest.Pool(t, 2)
	s := startServe(t, "--dsn", dsn, "--rate", "20", "--log-level", "debug")

	first := getProof(t, s)
	requireConsistent(t, first)
	if first.Backend != "postgresql" || first.Phase != "live" || first.Scenario != "proof" {
		t.Errorf("backend %q, phase %q, scenario %q; want postgresql, live, proof",
			first.Backend, first.Phase, first.Scenario)
	}
	if !namespaceExists(t, pool, first.Namespace) {
		t.Fatalf("namespace %q of the proof does not exist", first.Namespace)
	}

	// The load fires 216 orders at 20 per second, so trades grow for about ten seconds.
	latest := first
	for deadline := time.Now().Add(time.Minute); latest.Trades <= first.Trades; {
		if time.Now().After(deadline) {
			t.Fatalf("trades stayed at %d for a minute: the proof is not live", first.Trades)
		}
		time.Sleep(100 * time.Millisecond)
		latest = getProof(t, s)
		requireConsistent(t, latest)
	}

	moveCent(t, pool, first.Namespace)
	broken := getProof(t, s)
	if broken.Consistent || broken.Verdict != verify.Inconsistent {
		t.Errorf("after a cent moved without a ledger entry: %s (consistent=%v), want inconsistent",
			broken.Verdict, broken.Consistent)
	}
	if v := checkVerdict(broken, "balances-match-ledger"); v != verify.Fail {
		t.Errorf("balances-match-ledger: %q, want fail: %+v", v, broken.Checks)
	}
	if v := checkVerdict(broken, "cash-conserved"); v != verify.Pass {
		t.Errorf("cash-conserved: %q, want pass, because the cent stayed in the books", v)
	}

	if code := s.stop(t); code != exitConsistent {
		t.Errorf("serve exit code %d after cancellation, want 0\nstderr:\n%s", code, s.stderr)
	}
	if namespaceExists(t, pool, first.Namespace) {
		t.Errorf("namespace %s still exists after serve stopped without --keep", first.Namespace)
	}
	if strings.Contains(s.stderr.String(), "level=ERROR") {
		t.Errorf("serve logged errors:\n%s", s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "path=/api/proof status=200") {
		t.Errorf("debug log lacks the requests:\n%s", s.stderr)
	}
}

// TestServeKeptNamespace serves a namespace that parity run kept: the proof of the settled
// run, the other routes, a 503 once a table is gone, and the namespace left in place.
func TestServeKeptNamespace(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	dsn := pgtest.ConnString(t)
	pool := pgtest.Pool(t, 2)
	ns := keepRun(t, dsn, pool)
	s := startServe(t, "--dsn", dsn, "--namespace", ns)

	p := getProof(t, s)
	requireConsistent(t, p)
	if p.Namespace != ns || p.Phase != "final" {
		t.Errorf("namespace %q, phase %q; want %q, final", p.Namespace, p.Phase, ns)
	}
	if checkVerdict(p, "settlement-zero-sum") != verify.Pass {
		t.Errorf("the final phase lacks a passing settlement-zero-sum: %+v", p.Checks)
	}

	t.Run("routes", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			status             int
			body               string
		}{
			{"index", http.MethodGet, "/", http.StatusOK, "/api/proof"},
			{"unknown path", http.MethodGet, "/api/nope", http.StatusNotFound, ""},
			{"path below proof", http.MethodGet, "/api/proof/x", http.StatusNotFound, ""},
			{"post proof", http.MethodPost, "/api/proof", http.StatusMethodNotAllowed, ""},
			{"delete index", http.MethodDelete, "/", http.StatusMethodNotAllowed, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := request(t, tt.method, s.url+tt.path)
				if resp.StatusCode != tt.status {
					t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
				}
				if !strings.Contains(string(body), tt.body) {
					t.Errorf("%s %s: body lacks %q: %s", tt.method, tt.path, tt.body, body)
				}
				if tt.status == http.StatusMethodNotAllowed && !strings.Contains(resp.Header.Get("Allow"), "GET") {
					t.Errorf("%s %s: Allow %q, want GET", tt.method, tt.path, resp.Header.Get("Allow"))
				}
			})
		}
	})

	dropTable(t, pool, ns, schema.TradesTable)
	resp, body := request(t, http.MethodGet, s.url+"/api/proof")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without the trades table: status %d, want 503: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("503 Content-Type %q, want application/json", ct)
	}
	var failure struct{ Error string }
	if err := json.Unmarshal(body, &failure); err != nil || !strings.Contains(failure.Error, "trades") {
		t.Errorf("503 body %s: want a JSON error naming the trades table (decode: %v)", body, err)
	}
	if !strings.Contains(s.stderr.String(), "level=ERROR msg=\"compute proof\"") {
		t.Errorf("the database error was not logged:\n%s", s.stderr)
	}

	if code := s.stop(t); code != exitConsistent {
		t.Errorf("serve exit code %d, want 0\nstderr:\n%s", code, s.stderr)
	}
	if !namespaceExists(t, pool, ns) {
		t.Errorf("serve --namespace dropped the kept namespace %s", ns)
	}
}

func TestServeKeepLeavesNamespace(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	pool := pgtest.Pool(t, 2)
	s := startServe(t, "--dsn", pgtest.ConnString(t), "--rate", "5", "--keep")
	ns := getProof(t, s).Namespace
	t.Cleanup(func() {
		if err := schema.Drop(context.Background(), pool, ns); err != nil {
			t.Errorf("drop kept namespace %s: %v", ns, err)
		}
	})

	if code := s.stop(t); code != exitConsistent {
		t.Errorf("serve exit code %d, want 0\nstderr:\n%s", code, s.stderr)
	}
	if !namespaceExists(t, pool, ns) {
		t.Errorf("serve --keep dropped namespace %s", ns)
	}
	if want := "parity proof --namespace " + ns; !strings.Contains(s.stdout.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, s.stdout)
	}
}

func dropTable(t *testing.T, pool *pgxpool.Pool, ns, table string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), "DROP TABLE "+pgx.Identifier{ns, table}.Sanitize())
	if err != nil {
		t.Fatalf("drop table %s.%s: %v", ns, table, err)
	}
}

func TestServeUsageErrors(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	tests := []struct {
		name    string
		args    []string
		want    []string
		notWant []string
	}{
		{"all interfaces", []string{"--addr", "0.0.0.0:8080"}, []string{`"0.0.0.0:8080"`, "not a loopback"}, nil},
		{"empty host", []string{"--addr", ":8080"}, []string{"every interface", "loopback"}, nil},
		{"private address", []string{"--addr", "10.1.2.3:8080"}, []string{"10.1.2.3", "not a loopback"}, nil},
		{"IPv6 any", []string{"--addr", "[::]:8080"}, []string{"not a loopback"}, nil},
		{"host name", []string{"--addr", "example.com:8080"}, []string{"example.com", "not a loopback"}, nil},
		{"no port", []string{"--addr", "127.0.0.1"}, []string{`"127.0.0.1"`, "host:port"}, nil},
		{"port out of range", []string{"--addr", "127.0.0.1:70000"}, []string{`"70000"`}, nil},
		{"zero rate", []string{"--rate", "0"}, []string{"--rate 0"}, nil},
		{"unknown scenario", []string{"--scenario", "nope"}, []string{"nope", "proof"}, nil},
		{"namespace with rate", []string{"--namespace", "parity_x", "--rate", "5", "--dsn", "postgres://127.0.0.1/x"},
			[]string{"--rate", "--namespace"}, nil},
		{"namespace without target", []string{"--namespace", "parity_x"}, []string{"--dsn", "throwaway"}, nil},
		{"keep on a throwaway server", []string{"--keep"}, []string{"--keep", "--dsn"}, nil},
		{"invalid namespace", []string{"--namespace", "public", "--dsn", "postgres://127.0.0.1/x"},
			[]string{`"public"`, "parity_"}, nil},
		{"two targets", []string{"--dsn", "postgres://127.0.0.1/x", "--dsql-endpoint", "abc.dsql.us-east-1.on.aws"},
			[]string{"choose one"}, nil},
		{"malformed dsn keeps password secret", []string{"--dsn", "postgres://u:hunter2secret@127.0.0.1:notaport/db"},
			[]string{"--dsn"}, []string{"hunter2secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runParity(t, append([]string{"serve"}, tt.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, exitUsage, stdout, stderr)
			}
			checkMessages(t, stdout, stderr, tt.want, tt.notWant)
		})
	}
}

func TestServeAddressInUse(t *testing.T) {
	t.Setenv("PARITY_DSN", "")
	s := startServe(t, "--dsn", pgtest.ConnString(t), "--rate", "1")
	addr := strings.TrimPrefix(s.url, "http://")
	code, _, stderr := runParity(t, "serve", "--addr", addr, "--dsn", pgtest.ConnString(t))
	if code != exitInfra {
		t.Errorf("exit code %d on a taken port, want %d\n%s", code, exitInfra, stderr)
	}
	if !strings.Contains(stderr, "--addr") {
		t.Errorf("stderr does not point at --addr:\n%s", stderr)
	}
}
