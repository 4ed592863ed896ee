package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/internal/pgtest"
	"parity/scenario"
	"parity/schema"
	"parity/target"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func parseScenario(t *testing.T, yaml string) *scenario.Scenario {
	t.Helper()
	file, err := scenario.Parse([]byte(yaml), "test.yaml", scenario.Options{})
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return file.Scenarios[0]
}

func newNamespace(t *testing.T, pool *pgxpool.Pool, sc *scenario.Scenario, v schema.Variant) schema.Namespace {
	t.Helper()
	ns, err := schema.Create(context.Background(), pool, schema.PostgreSQL, v,
		schema.NewName(time.Now()), schema.Meta{Scenario: sc.Name, Seed: sc.Seed, Isolation: sc.Isolation})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := schema.Drop(context.Background(), pool, ns.Name); err != nil {
			t.Errorf("drop namespace: %v", err)
		}
	})
	return ns
}

// tightScenario has few accounts with little cash, so that sequential orders hit every
// rule: unfunded takers and makers, self-trades, shorts opened and closed.
const tightScenario = `
scenarios:
  - name: tight
    seed: 11
    markets: 2
    accounts:
      - {name: traders, count: 4, balance: 3000}
    flows:
      - {count: 300, group: traders, side: buy, price: {min: 30, max: 70}, quantity: {min: 1, max: 8}}
      - {count: 300, group: traders, side: sell, price: {min: 30, max: 70}, quantity: {min: 1, max: 8}}
    concurrency: 1
`

// TestSQLBookMatchesModel places the same orders one at a time through the database engine
// and through the in-memory model, and compares every order's outcome, every balance and
// every position. The model is plain Go, so this pins the SQL's price-time priority, partial
// fills, self-trade prevention and conditional funding to the rules the unit tests state.
func TestSQLBookMatchesModel(t *testing.T) {
	for _, v := range []schema.Variant{schema.DistinctRows, schema.SharedRow} {
		t.Run(v.Name, func(t *testing.T) {
			ctx := context.Background()
			sc := parseScenario(t, tightScenario)
			pool := pgtest.Pool(t, 4)
			ns := newNamespace(t, pool, sc, v)
			eng, err := engine.New(pool, ns, sc, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			model := engine.NewMemory()
			for i := range sc.TotalAccounts() {
				model.Deposit(sc.AccountID(i), sc.AccountBalance(i))
			}

			rng := rand.New(rand.NewPCG(1, 1))
			var unfunded, selfTrades, fills int
			for seq := range sc.TotalOrders() {
				o := sc.Order(seq)
				rec := eng.PlaceOrder(ctx, rng, o)
				if rec.Outcome != engine.Committed {
					t.Fatalf("order %d: %s: %v", seq, rec.Outcome, rec.Err)
				}
				m, err := model.Place(ctx, taker(sc, o), engine.DefaultMaxFills)
				if err != nil {
					t.Fatal(err)
				}
				var notional int64
				for _, f := range m.Fills {
					notional += f.Price * f.Quantity
				}
				got := fmt.Sprintf("%s/%s filled %d in %d fills for %d, %d unfunded",
					rec.Status, rec.Reason, rec.Filled, rec.Fills, rec.Notional, rec.UnfundedFills)
				want := fmt.Sprintf("%s/%s filled %d in %d fills for %d, %d unfunded",
					m.Status, m.Reason, m.Filled, len(m.Fills), notional, m.UnfundedFills)
				if got != want {
					t.Fatalf("order %d (%+v): database %s, model %s", seq, o, got, want)
				}
				unfunded += m.UnfundedFills
				fills += len(m.Fills)
				for _, c := range m.Cancelled {
					if c.Reason == schema.ReasonSelfTrade {
						selfTrades++
					}
				}
			}
			if unfunded == 0 || selfTrades == 0 || fills == 0 {
				t.Fatalf("stream too easy: %d fills, %d unfunded, %d self-trades", fills, unfunded, selfTrades)
			}
			compareBooks(t, pool, ns, sc, model)
		})
	}
}

func taker(sc *scenario.Scenario, o scenario.Order) engine.Taker {
	return engine.Taker{ID: o.ID, Seq: o.Seq, Market: sc.MarketID(o.Market),
		Account: sc.AccountID(o.Account), Side: o.Side, Price: o.Price, Quantity: o.Quantity}
}

func compareBooks(t *testing.T, pool *pgxpool.Pool, ns schema.Namespace, sc *scenario.Scenario, model *engine.Memory) {
	t.Helper()
	ctx := context.Background()
	var shorts int
	for i := range sc.TotalAccounts() {
		id := sc.AccountID(i)
		var free, locked int64
		err := pool.QueryRow(ctx, "SELECT free, locked FROM "+ns.Table(schema.AccountsTable)+
			" WHERE id = $1", id).Scan(&free, &locked)
		if err != nil {
			t.Fatal(err)
		}
		if c := model.Cash[id]; free != c.Free || locked != c.Locked {
			t.Errorf("account %s: database free %d locked %d, model %d %d", sc.AccountName(i), free, locked, c.Free, c.Locked)
		}
		for m := range sc.Markets {
			var pos int64
			err := pool.QueryRow(ctx, "SELECT COALESCE((SELECT quantity FROM "+ns.Table(schema.PositionsTable)+
				" WHERE account_id = $1 AND market_id = $2), 0)", id, sc.MarketID(m)).Scan(&pos)
			if err != nil {
				t.Fatal(err)
			}
			if want := model.Positions[sc.MarketID(m)][id]; pos != want {
				t.Errorf("position of %s in %s: database %d, model %d", sc.AccountName(i), sc.MarketName(m), pos, want)
			}
			if pos < 0 {
				shorts++
			}
		}
	}
	if shorts == 0 {
		t.Error("no short position: the stream never exercised collateral")
	}
}

func TestRunnerRetriesSerializationFailure(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t, 4)
	table := scratchTable(t, pool)

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, "UPDATE "+table+" SET v = v + 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}

	r := &engine.Runner{Pool: pool, TxOptions: pgx.TxOptions{IsoLevel: pgx.RepeatableRead},
		Policy: scenario.Retry{MaxAttempts: 5, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}}
	var res engine.Result
	var wg sync.WaitGroup
	wg.Go(func() {
		res = r.Run(ctx, rand.New(rand.NewPCG(1, 1)), func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE "+table+" SET v = v + 10 WHERE id = 1")
			return err
		}, nil)
	})
	waitForLockWait(t, pool)
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if res.Outcome != engine.Committed || len(res.Attempts) != 2 {
		t.Fatalf("outcome %s after %d attempts (%v), want committed after 2", res.Outcome, len(res.Attempts), res.Err)
	}
	if a := res.Attempts[0]; a.Class != engine.ClassConflict || a.Label != "40001" {
		t.Errorf("first attempt %s %q, want conflict 40001", a.Class, a.Label)
	}
	if a := res.Attempts[1]; a.Class != engine.ClassNone || a.N != 2 {
		t.Errorf("second attempt %+v, want attempt 2 committed", a)
	}
	var v int
	if err := pool.QueryRow(ctx, "SELECT v FROM "+table+" WHERE id = 1").Scan(&v); err != nil || v != 11 {
		t.Errorf("v = %d (%v), want 11: both updates once", v, err)
	}
}

// waitForLockWait waits until some session of the pool's server waits on a lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var waiting int
		err := pool.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no session started waiting on the lock")
}

func scratchTable(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	name := pgx.Identifier{"scratch_" + strings.ReplaceAll(uuid.NewString(), "-", "")}.Sanitize()
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+name+" (id int PRIMARY KEY, v int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), "INSERT INTO "+name+" VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP TABLE "+name) })
	return name
}

func TestRunnerOutcomes(t *testing.T) {
	pool := pgtest.Pool(t, 4)
	table := scratchTable(t, pool)
	policy := scenario.Retry{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	tests := []struct {
		name     string
		sql      string
		outcome  engine.Outcome
		attempts int
		label    string
	}{
		{"unique violation is not retried", "INSERT INTO " + table + " VALUES (1, 0)", engine.Failed, 1, "23505"},
		{"syntax error is not retried", "SELEC 1", engine.Failed, 1, "42601"},
		{"serialization failure until attempts run out",
			"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", engine.GaveUp, 3, "40001"},
		{"deadlock is retried", "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$", engine.GaveUp, 3, "40P01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &engine.Runner{Pool: pool, Policy: policy}
			res := r.Run(context.Background(), rand.New(rand.NewPCG(1, 1)), func(ctx context.Context, tx pgx.Tx) error {
				_, err := tx.Exec(ctx, tt.sql)
				return err
			}, nil)
			if res.Outcome != tt.outcome || len(res.Attempts) != tt.attempts {
				t.Fatalf("outcome %s after %d attempts, want %s after %d (%v)", res.Outcome, len(res.Attempts), tt.outcome, tt.attempts, res.Err)
			}
			if got := res.Attempts[0].Label; got != tt.label {
				t.Errorf("label %q, want %q", got, tt.label)
			}
			last := res.Attempts[len(res.Attempts)-1]
			if last.Backoff != 0 {
				t.Errorf("last attempt slept %v before nothing", last.Backoff)
			}
		})
	}
}

// TestRunnerResolvesLostCommit breaks half the COMMITs' connections, losing either the reply
// or the COMMIT itself, and checks that the runner looks the transaction up instead of
// guessing. A transaction whose COMMIT reached the server is committed once, and one whose
// COMMIT was dropped runs again.
func TestRunnerResolvesLostCommit(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(pgtest.ConnString(t))
	if err != nil {
		t.Fatal(err)
	}
	faults := &target.CommitFaults{PerMille: 500, Seed: 3}
	faults.Apply(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	table := scratchTable(t, pgtest.Pool(t, 2))

	r := &engine.Runner{Pool: pool, Policy: scenario.Retry{MaxAttempts: 20, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}}
	rng := rand.New(rand.NewPCG(1, 1))
	var resolved int
	for i := range 200 {
		id := i + 100
		res := r.Run(ctx, rng, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO "+table+" VALUES ($1, 0)", id)
			return err
		}, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
			var exists bool
			err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE id = $1)", id).Scan(&exists)
			return exists, err
		})
		if res.Outcome != engine.Committed {
			t.Fatalf("transaction %d: %s after %d attempts: %v", i, res.Outcome, len(res.Attempts), res.Err)
		}
		for _, a := range res.Attempts {
			if a.Resolved {
				resolved++
			}
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id >= 100").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 200 {
		t.Errorf("%d rows, want 200: every transaction exactly once", rows)
	}
	lost, dropped := faults.Broken()
	if lost == 0 || dropped == 0 {
		t.Fatalf("faults: %d lost replies, %d dropped commits; want both", lost, dropped)
	}
	if int64(resolved) != lost+dropped {
		t.Errorf("%d lookups, want one per broken commit (%d)", resolved, lost+dropped)
	}
}
