package verify_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/internal/pgtest"
	"parity/scenario"
	"parity/schema"
	"parity/verify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// booksScenario trades four markets among twelve traders; the bystander never trades, so it
// holds no position anywhere. One order at a time makes the books the same on every run,
// so that each corruption below always finds the rows it breaks.
const booksScenario = `
scenarios:
  - name: books
    seed: 7
    markets: 4
    outcome: seed
    accounts:
      - {name: traders, count: 12, balance: 50000}
      - {name: bystander, count: 1, balance: 1000}
    flows:
      - {count: 120, group: traders, side: buy, price: {min: 40, max: 60}, quantity: {min: 1, max: 5}}
      - {count: 120, group: traders, side: sell, price: {min: 40, max: 60}, quantity: {min: 1, max: 5}}
    concurrency: 1
`

// books runs the books scenario to the end in a fresh namespace and returns the pool, the
// namespace and the scenario.
func books(t *testing.T) (*pgxpool.Pool, schema.Namespace, *scenario.Scenario) {
	t.Helper()
	return runScenario(t, booksScenario)
}

// runScenario runs the first scenario of yaml to the end in a fresh namespace, dropped when
// the test ends.
func runScenario(t testing.TB, yaml string) (*pgxpool.Pool, schema.Namespace, *scenario.Scenario) {
	t.Helper()
	ctx := context.Background()
	file, err := scenario.Parse([]byte(yaml), "books.yaml", scenario.Options{})
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	sc := file.Scenarios[0]
	pool := pgtest.Pool(t, sc.Concurrency+4)
	ns, err := schema.Create(ctx, pool, schema.PostgreSQL, schema.DistinctRows,
		schema.NewName(time.Now()), schema.Meta{Scenario: sc.Name, Seed: sc.Seed, Isolation: sc.Isolation})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := schema.Drop(context.Background(), pool, ns.Name); err != nil {
			t.Errorf("drop namespace: %v", err)
		}
	})
	eng, err := engine.New(pool, ns, sc, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	res, err := eng.Load(ctx, engine.LoadOptions{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := eng.Settle(ctx); err != nil {
		t.Fatalf("settle: %v", err)
	}
	if err := eng.WriteHistory(ctx, res.Records); err != nil {
		t.Fatalf("write history: %v", err)
	}
	if err := schema.MarkFinished(ctx, pool, &ns, time.Now()); err != nil {
		t.Fatal(err)
	}
	return pool, ns, sc
}

func audit(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace, sc *scenario.Scenario) map[string]verify.Result {
	t.Helper()
	deposits := sc.TotalDeposits()
	results, err := verify.Audit(context.Background(), pool, ns, verify.Expect{Phase: verify.Final, Deposits: &deposits})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	byName := map[string]verify.Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	if len(byName) != len(verify.Checks(verify.Final)) {
		t.Fatalf("audit returned %d results, want one per check (%d)", len(byName), len(verify.Checks(verify.Final)))
	}
	return byName
}

// exec runs SQL with {ns} replaced by the namespace's quoted name.
func exec(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace, sql string, args ...any) {
	t.Helper()
	sql = replaceNS(sql, ns)
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

func queryID(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace, sql string, args ...any) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := pool.QueryRow(context.Background(), replaceNS(sql, ns), args...).Scan(&id); err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return id
}

func replaceNS(sql string, ns schema.Namespace) string {
	out := ""
	for i := 0; i < len(sql); i++ {
		if i+4 <= len(sql) && sql[i:i+4] == "{ns}" {
			out += fmt.Sprintf("%q", ns.Name)
			i += 3
			continue
		}
		out += string(sql[i])
	}
	return out
}

func TestConsistencyAuditPassesCleanBooks(t *testing.T) {
	pool, ns, sc := books(t)
	for name, r := range audit(t, pool, ns, sc) {
		if r.Verdict != verify.Pass {
			t.Errorf("%s: %s (%s; %s), want pass", name, r.Verdict, r.Found, r.Error)
		}
		if r.Checked == 0 {
			t.Errorf("%s checked nothing", name)
		}
	}
}

// corruption breaks the books behind the engine's back and names the check that must catch
// it with witnesses naming the returned ids. also lists the other checks that the same
// fault necessarily breaks; every check not named must pass.
type corruption struct {
	name  string
	check string
	also  []string
	apply func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID
}

var corruptions = []corruption{
	{
		name:  "cent moved without ledger entry",
		check: "balances-match-ledger",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			from := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts WHERE free > 0 ORDER BY id LIMIT 1`)
			to := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts WHERE id <> $1 ORDER BY id LIMIT 1`, from)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free - 1 WHERE id = $1`, from)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free + 1 WHERE id = $1`, to)
			return []uuid.UUID{from, to}
		},
	},
	{
		name:  "position changed alone",
		check: "contracts-zero-sum",
		also:  []string{"positions-match-trades", "replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// A long position in a market that resolved NO paid nothing, so settlement's
			// figures do not depend on it and only the contract count breaks.
			market := queryID(t, pool, ns, `SELECT p.market_id FROM {ns}.positions p
				JOIN {ns}.markets m ON m.id = p.market_id
				WHERE m.outcome = 'no' AND p.quantity > 0 ORDER BY p.market_id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.positions SET quantity = quantity + 1
				WHERE (account_id, market_id) = (SELECT account_id, market_id FROM {ns}.positions
				WHERE market_id = $1 AND quantity > 0 ORDER BY account_id LIMIT 1)`, market)
			return []uuid.UUID{market}
		},
	},
	{
		name:  "negative balance forced",
		check: "no-negative-balance",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// The overdraft is journaled like any transfer, so only the sign is wrong.
			from := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts ORDER BY id LIMIT 1`)
			to := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts WHERE id <> $1 ORDER BY id LIMIT 1`, from)
			var free int64
			if err := pool.QueryRow(context.Background(), replaceNS(
				`SELECT free FROM {ns}.accounts WHERE id = $1`, ns), from).Scan(&free); err != nil {
				t.Fatal(err)
			}
			amount := free + 5
			journal := uuid.New()
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free - $2 WHERE id = $1`, from, amount)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free + $2 WHERE id = $1`, to, amount)
			exec(t, pool, ns, `INSERT INTO {ns}.ledger (id, journal_id, kind, account_id, bucket, amount)
				VALUES ($1, $3, 'fill', $4, 'free', -$2::bigint), ($5, $3, 'fill', $6, 'free', $2::bigint)`,
				uuid.New(), amount, journal, from, uuid.New(), to)
			return []uuid.UUID{from}
		},
	},
	{
		name:  "entry without its counterpart",
		check: "ledger-balanced",
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			journal := uuid.New()
			market := queryID(t, pool, ns, `SELECT id FROM {ns}.markets ORDER BY id LIMIT 1`)
			exec(t, pool, ns, `INSERT INTO {ns}.ledger (id, journal_id, kind, bucket, amount, market_id)
				VALUES ($1, $2, 'fill', 'clearing', 1, $3)`, uuid.New(), journal, market)
			return []uuid.UUID{journal}
		},
	},
	{
		name:  "deposit not recorded",
		check: "cash-conserved",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// Cash arrives with a balanced deposit journal, but the account's deposit total
			// and the scenario's deposits do not grow.
			account := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts ORDER BY id LIMIT 1`)
			journal := uuid.New()
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free + 100 WHERE id = $1`, account)
			exec(t, pool, ns, `INSERT INTO {ns}.ledger (id, journal_id, kind, account_id, bucket, amount)
				VALUES ($1, $2, 'deposit', $3, 'free', 100), ($4, $2, 'deposit', $3, 'funding', -100)`,
				uuid.New(), journal, account, uuid.New())
			return []uuid.UUID{account}
		},
	},
	{
		name:  "settlement overpaid",
		check: "settlement-zero-sum",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// A long in a YES market is paid one cent too much, taken from the bystander in
			// the same balanced journal: cash and ledger stay whole, settlement does not.
			market := queryID(t, pool, ns, `SELECT p.market_id FROM {ns}.positions p
				JOIN {ns}.markets m ON m.id = p.market_id
				WHERE m.outcome = 'yes' AND p.quantity > 0 ORDER BY p.market_id LIMIT 1`)
			long := queryID(t, pool, ns, `SELECT account_id FROM {ns}.positions
				WHERE market_id = $1 AND quantity > 0 ORDER BY account_id LIMIT 1`, market)
			bystander := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts WHERE name LIKE 'bystander%'`)
			journal := queryID(t, pool, ns, `SELECT journal_id FROM {ns}.ledger
				WHERE kind = 'settlement' AND account_id = $1 AND market_id = $2`, long, market)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free + 1 WHERE id = $1`, long)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free - 1 WHERE id = $1`, bystander)
			exec(t, pool, ns, `INSERT INTO {ns}.ledger (id, journal_id, kind, account_id, bucket, amount, market_id)
				VALUES ($1, $2, 'settlement', $3, 'free', 1, $4), ($5, $2, 'settlement', $6, 'free', -1, $4)`,
				uuid.New(), journal, long, market, uuid.New(), bystander)
			return []uuid.UUID{market}
		},
	},
	{
		name:  "contracts moved between positions",
		check: "positions-match-trades",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// One long gains a contract and another loses one: every market still nets to
			// zero and holds as many long contracts, but the positions no longer follow
			// from the trades. The market resolved NO, so its longs were paid nothing and
			// settlement's figures do not change.
			market := queryID(t, pool, ns, `SELECT p.market_id FROM {ns}.positions p
				JOIN {ns}.markets m ON m.id = p.market_id
				WHERE m.outcome = 'no' AND p.quantity > 0
				GROUP BY p.market_id HAVING count(*) >= 2 ORDER BY p.market_id LIMIT 1`)
			up := queryID(t, pool, ns, `SELECT account_id FROM {ns}.positions
				WHERE market_id = $1 AND quantity > 0 ORDER BY account_id LIMIT 1`, market)
			down := queryID(t, pool, ns, `SELECT account_id FROM {ns}.positions
				WHERE market_id = $1 AND quantity > 0 AND account_id <> $2 ORDER BY account_id LIMIT 1`, market, up)
			exec(t, pool, ns, `UPDATE {ns}.positions SET quantity = quantity + 1 WHERE account_id = $1 AND market_id = $2`, up, market)
			exec(t, pool, ns, `UPDATE {ns}.positions SET quantity = quantity - 1 WHERE account_id = $1 AND market_id = $2`, down, market)
			return []uuid.UUID{up, down}
		},
	},
	{
		name:  "collateral locked without a short",
		check: "collateral-locked",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// Cash moves from free to locked with a balanced journal, but every market is
			// settled, so no short position needs it.
			account := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts WHERE free >= 100 ORDER BY id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free - 100, locked = locked + 100 WHERE id = $1`, account)
			exec(t, pool, ns, `INSERT INTO {ns}.ledger (id, journal_id, kind, account_id, bucket, amount)
				VALUES ($1, $2, 'fill', $3, 'free', -100), ($4, $2, 'fill', $3, 'locked', 100)`,
				uuid.New(), uuid.New(), account, uuid.New())
			return []uuid.UUID{account}
		},
	},
	{
		name:  "order filled beyond its trades",
		check: "orders-match-trades",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			order := queryID(t, pool, ns, `SELECT id FROM {ns}.orders
				WHERE status = 'open' AND quantity - filled >= 2 ORDER BY id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.orders SET filled = filled + 1 WHERE id = $1`, order)
			return []uuid.UUID{order}
		},
	},
	{
		name:  "trade off the resting price",
		check: "trades-valid",
		also:  []string{"history-matches", "replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			trade := queryID(t, pool, ns, `SELECT id FROM {ns}.trades WHERE price < 99 ORDER BY id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.trades SET price = price + 1 WHERE id = $1`, trade)
			return []uuid.UUID{trade}
		},
	},
	{
		name:  "trade with itself",
		check: "no-self-trade",
		also:  []string{"trades-valid", "positions-match-trades"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			trade := queryID(t, pool, ns, `SELECT id FROM {ns}.trades ORDER BY id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.trades SET seller_id = buyer_id WHERE id = $1`, trade)
			return []uuid.UUID{trade}
		},
	},
	{
		name:  "bid raised over the ask",
		check: "book-not-crossed",
		also:  []string{"replay-matches"},
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// An untouched resting bid is moved up to the best ask of its market.
			market := queryID(t, pool, ns, `SELECT b.market_id FROM {ns}.orders b JOIN {ns}.orders a
				ON a.market_id = b.market_id AND a.side = 'sell' AND a.status = 'open'
				WHERE b.side = 'buy' AND b.status = 'open' AND b.filled = 0
				ORDER BY b.market_id LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.orders SET price = (SELECT min(price) FROM {ns}.orders
				WHERE market_id = $1 AND side = 'sell' AND status = 'open')
				WHERE id = (SELECT id FROM {ns}.orders WHERE market_id = $1 AND side = 'buy'
				AND status = 'open' AND filled = 0 ORDER BY id LIMIT 1)`, market)
			return []uuid.UUID{market}
		},
	},
	{
		name:  "failed order left a trace",
		check: "history-matches",
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			// The client saw the order fail, yet it committed.
			order := queryID(t, pool, ns, `SELECT order_id FROM {ns}.history
				WHERE outcome = 'committed' ORDER BY seq LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.history SET outcome = 'failed', filled = 0, fills = 0, notional = 0
				WHERE order_id = $1`, order)
			return []uuid.UUID{order}
		},
	},
	{
		name:  "client history disagrees",
		check: "history-matches",
		apply: func(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace) []uuid.UUID {
			order := queryID(t, pool, ns, `SELECT order_id FROM {ns}.history
				WHERE outcome = 'committed' AND fills > 0 ORDER BY seq LIMIT 1`)
			exec(t, pool, ns, `UPDATE {ns}.history SET filled = filled + 1 WHERE order_id = $1`, order)
			return []uuid.UUID{order}
		},
	},
}

// crossChecks are checks that recompute the books in another way, so they catch faults that
// a more specific check catches too. Their own tests are elsewhere.
var crossChecks = []string{"replay-matches"}

func TestConsistencyAuditCatchesCorruption(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range corruptions {
		covered[c.check] = true
		t.Run(c.name, func(t *testing.T) {
			pool, ns, sc := books(t)
			want := c.apply(t, pool, ns)
			results := audit(t, pool, ns, sc)
			for name, r := range results {
				if name == c.check {
					continue
				}
				want := verify.Pass
				if slices.Contains(c.also, name) {
					want = verify.Fail
				}
				if r.Verdict != want {
					t.Errorf("%s: %s (%s), want %s", name, r.Verdict, r.Found, want)
				}
			}
			r := results[c.check]
			if r.Verdict != verify.Fail {
				t.Fatalf("%s: %s (%s), want fail", c.check, r.Verdict, r.Found)
			}
			if r.Violations == 0 {
				t.Errorf("%s: failed with 0 violations", c.check)
			}
			if len(r.Witnesses) == 0 || len(r.Witnesses) > verify.MaxWitnesses {
				t.Fatalf("%s: %d witnesses, want 1 to %d", c.check, len(r.Witnesses), verify.MaxWitnesses)
			}
			ids := map[string]bool{}
			for _, w := range r.Witnesses {
				ids[w.ID] = true
			}
			for _, id := range want {
				if !ids[id.String()] {
					t.Errorf("%s: witnesses %+v do not name %s", c.check, r.Witnesses, id)
				}
			}
		})
	}
	for _, c := range verify.Checks(verify.Final) {
		if !covered[c.Name] && !slices.Contains(crossChecks, c.Name) {
			t.Errorf("check %s has no corruption test", c.Name)
		}
	}
}

func TestMonitorCatchesTransientViolation(t *testing.T) {
	pool, ns, sc := books(t)
	ctx := context.Background()
	m := verify.StartMonitor(ctx, pool, ns, 20*time.Millisecond, nil)

	account := queryID(t, pool, ns, `SELECT id FROM {ns}.accounts ORDER BY id LIMIT 1`)
	exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free - 1000000 WHERE id = $1`, account)
	time.Sleep(200 * time.Millisecond)
	exec(t, pool, ns, `UPDATE {ns}.accounts SET free = free + 1000000 WHERE id = $1`, account)
	r := verify.MidRunResult(m.Stop(ctx))

	if r.Verdict != verify.Fail || r.Violations == 0 {
		t.Fatalf("mid-run result %s with %d violations, want fail", r.Verdict, r.Violations)
	}
	if r.Checked < 3 {
		t.Errorf("%d snapshots, want several at a 20 ms interval", r.Checked)
	}
	var sawTime, sawAccount bool
	for _, w := range r.Witnesses {
		sawTime = sawTime || (w.Kind == "snapshot" && strings.HasPrefix(w.ID, "t+"))
		sawAccount = sawAccount || (w.Kind == "account" && w.ID == account.String())
	}
	if !sawTime || !sawAccount {
		t.Errorf("witnesses %+v: want the snapshot's time and the negative account", r.Witnesses)
	}
	for name, res := range audit(t, pool, ns, sc) {
		if res.Verdict != verify.Pass {
			t.Errorf("final %s: %s, want pass: the books were restored", name, res.Verdict)
		}
	}
}

func TestMidRunResultVerdicts(t *testing.T) {
	ok := verify.Snapshot{Cash: 10, Deposits: 10}
	tests := []struct {
		name      string
		snapshots []verify.Snapshot
		want      verify.Verdict
	}{
		{"all balanced", []verify.Snapshot{ok, ok}, verify.Pass},
		{"ledger off once", []verify.Snapshot{ok, {LedgerSum: 3, Cash: 10, Deposits: 10}}, verify.Fail},
		{"cash off", []verify.Snapshot{{Cash: 9, Deposits: 10}}, verify.Fail},
		{"negative", []verify.Snapshot{{Cash: 10, Deposits: 10, Negative: 1}}, verify.Fail},
		{"none taken", []verify.Snapshot{{Err: context.DeadlineExceeded}}, verify.Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verify.MidRunResult(tt.snapshots).Verdict; got != tt.want {
				t.Errorf("verdict %s, want %s", got, tt.want)
			}
		})
	}
}

func TestContentionVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		required bool
		figures  verify.ContentionFigures
		want     verify.Verdict
	}{
		{"required and retried", true, verify.ContentionFigures{Retries: 1}, verify.Pass},
		{"required and gave up", true, verify.ContentionFigures{GaveUp: 1}, verify.Pass},
		{"required and only skipped", true, verify.ContentionFigures{UnfundedFills: 1}, verify.Unknown},
		{"required and overlapped", true, verify.ContentionFigures{Overlapped: 1}, verify.Pass},
		{"required and serial", true, verify.ContentionFigures{}, verify.Unknown},
		{"not required and serial", false, verify.ContentionFigures{}, verify.Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verify.Contention(tt.required, tt.figures).Verdict; got != tt.want {
				t.Errorf("verdict %s, want %s", got, tt.want)
			}
		})
	}
}
