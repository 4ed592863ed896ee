package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/schema"
)

// ProofFormat is the version of the proof document's layout.
const ProofFormat = 1

// Proof is the state of a namespace's books at one moment, computed from the database: the
// document that GET /api/proof serves and parity proof prints. Amounts are int64 cents.
type Proof struct {
	Format    int    `json:"format"`
	Namespace string `json:"namespace"`
	Scenario  string `json:"scenario"`
	// Sabotage names the deliberate engine defect of the run that made the namespace.
	Sabotage string    `json:"sabotage,omitempty"`
	Backend  string    `json:"backend"`
	Phase    string    `json:"phase"`
	At       time.Time `json:"at"`

	Orders int64 `json:"orders"`
	Trades int64 `json:"trades"`
	// LedgerImbalance is the sum of every ledger entry; zero when the ledger balances.
	LedgerImbalance  int64 `json:"ledger_imbalance"`
	NegativeBalances int64 `json:"negative_balances"`
	CashConserved    bool  `json:"cash_conserved"`
	Cash             int64 `json:"cash"`
	Deposits         int64 `json:"deposits"`

	Checks []Result `json:"checks"`
	// Verdict is the checks' overall verdict, and Consistent is true only when it is
	// consistent.
	Verdict    Verdict `json:"verdict"`
	Consistent bool    `json:"consistent"`
}

// ComputeProof audits the namespace in a read-only REPEATABLE READ transaction, so that
// every figure and check describes the same committed state even while orders are still
// committing. A check whose query fails aborts that transaction, so the checks after it run
// in a fresh one rather than all failing with it. backend names the database kind in the
// document.
func ComputeProof(ctx context.Context, pool *pgxpool.Pool, ns schema.Namespace, backend string,
	exp Expect) (*Proof, error) {
	snapshot := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	tx, err := pool.BeginTx(ctx, snapshot)
	if err != nil {
		return nil, fmt.Errorf("compute proof: %w", err)
	}
	// A read-only transaction has nothing to keep; ending it is all that is left to do.
	defer func() {
		rollbackCtx, cancel := engine.CleanupContext(ctx)
		defer cancel()
		tx.Rollback(rollbackCtx)
	}()

	summary, err := Summarize(ctx, tx, ns)
	if err != nil {
		return nil, fmt.Errorf("compute proof: %w", err)
	}
	var results []Result
	for _, c := range Checks(exp.Phase) {
		r, err := c.Run(ctx, tx, ns, exp)
		results = append(results, r)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("compute proof: %w", ctx.Err())
		}
		rollbackCtx, cancel := engine.CleanupContext(ctx)
		tx.Rollback(rollbackCtx)
		cancel()
		if tx, err = pool.BeginTx(ctx, snapshot); err != nil {
			return nil, fmt.Errorf("compute proof: %w", err)
		}
	}
	p := &Proof{
		Format:           ProofFormat,
		Namespace:        ns.Name,
		Scenario:         ns.Meta.Scenario,
		Sabotage:         ns.Meta.Sabotage,
		Backend:          backend,
		Phase:            phaseName(exp.Phase),
		At:               time.Now().UTC(),
		Orders:           summary.Orders,
		Trades:           summary.Trades,
		LedgerImbalance:  summary.LedgerSum,
		NegativeBalances: summary.Negative,
		CashConserved:    summary.Cash == summary.Deposited,
		Cash:             summary.Cash,
		Deposits:         summary.Deposited,
		Checks:           results,
		Verdict:          Overall(results),
	}
	p.Consistent = p.Verdict == Consistent
	return p, nil
}

func phaseName(p Phase) string {
	if p == Final {
		return "final"
	}
	return "live"
}

// DetectPhase returns Final when the namespace's run finished, settled and with the
// client's history written, and Live otherwise: a kept namespace may come from a run that
// was stopped early, or one still trading.
func DetectPhase(ctx context.Context, db DB, ns schema.Namespace) (Phase, error) {
	var finished bool
	err := db.QueryRow(ctx, fmt.Sprintf("SELECT finished_at IS NOT NULL FROM %s",
		ns.Table(schema.MarkerTable))).Scan(&finished)
	if err != nil {
		return Live, fmt.Errorf("detect phase of %s: %w", ns.Name, err)
	}
	if finished {
		return Final, nil
	}
	return Live, nil
}
