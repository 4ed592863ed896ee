// Package verify audits a run's books: invariant checks over the database, each with a
// three-valued verdict, counts, and a few offending rows as witnesses.
package verify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"parity/schema"
)

// Verdict is the result of one check or of a whole run.
type Verdict string

// Verdicts of a check. A check is Unknown when it could not be evaluated, for example
// because its query failed.
const (
	Pass    Verdict = "pass"
	Fail    Verdict = "fail"
	Unknown Verdict = "unknown"
)

// Verdicts of a run.
const (
	Consistent   Verdict = "consistent"
	Inconsistent Verdict = "inconsistent"
	Inconclusive Verdict = "inconclusive"
)

// MaxWitnesses is the most offending rows a failed check reports.
const MaxWitnesses = 5

// Result is the outcome of one check.
type Result struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Verdict     Verdict `json:"verdict"`
	// Checked counts the rows or groups examined, Violations those that broke the rule.
	Checked    int64 `json:"checked"`
	Violations int64 `json:"violations"`
	// Expected and Found summarise the failure, or the figures a passing check compared.
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	// Witnesses are up to MaxWitnesses offending rows.
	Witnesses []Witness `json:"witnesses,omitempty"`
	// Details holds the figures behind Found, by name, for programs to read.
	Details map[string]int64 `json:"details,omitempty"`
	// Error is the reason the verdict is Unknown.
	Error string `json:"error,omitempty"`
}

// Witness is one offending row: what it is, its id and name, and the figures that break
// the rule, in cents or contracts.
type Witness struct {
	Kind   string  `json:"kind"`
	ID     string  `json:"id"`
	Name   string  `json:"name,omitempty"`
	Values []Value `json:"values"`
}

// Value is one named figure of a witness.
type Value struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
}

// DB is the part of a pgx connection, pool or transaction that the checks need.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Phase is the point in a run's life that an audit looks at; it decides which checks apply.
type Phase int

const (
	// Live is a run whose markets may still be trading: checks that need settlement or
	// the client's history do not apply.
	Live Phase = iota
	// Final is a finished run: every market settled and the client's history written.
	Final
)

// Expect holds what the client knows independently of the database. The zero value audits
// a live namespace and expects nothing beyond the database's own records.
type Expect struct {
	Phase Phase
	// Deposits is the total the client deposited, in cents; nil when unknown.
	Deposits *int64
}

// Check is one invariant over a namespace.
type Check struct {
	Name        string
	Description string
	// FinalOnly marks a check that needs a finished run.
	FinalOnly bool
	run       func(ctx context.Context, db DB, ns schema.Namespace, exp Expect, r *Result) error
}

// Checks returns the checks that apply in the phase, in the order they run.
func Checks(phase Phase) []Check {
	all := []Check{
		ledgerBalanced,
		cashConserved,
		noNegativeBalance,
		balancesMatchLedger,
		contractsZeroSum,
		positionsMatchTrades,
		collateralLocked,
		ordersMatchTrades,
		tradesValid,
		noSelfTrade,
		bookNotCrossed,
		settlementZeroSum,
		historyMatches,
		replayMatches,
	}
	var checks []Check
	for _, c := range all {
		if phase == Final || !c.FinalOnly {
			checks = append(checks, c)
		}
	}
	return checks
}

// Audit runs the phase's checks against the namespace and returns their results. A check
// whose query fails is Unknown with the error, and the audit goes on with the others. Audit
// returns an error only when ctx ends. To see one consistent state while orders are still
// committing, pass a REPEATABLE READ transaction as db.
func Audit(ctx context.Context, db DB, ns schema.Namespace, exp Expect) ([]Result, error) {
	var results []Result
	for _, c := range Checks(exp.Phase) {
		r, err := c.Run(ctx, db, ns, exp)
		if err != nil && ctx.Err() != nil {
			return results, ctx.Err()
		}
		results = append(results, r)
	}
	return results, nil
}

// Run runs the check. The error, when not nil, is also recorded in the Unknown result.
func (c Check) Run(ctx context.Context, db DB, ns schema.Namespace, exp Expect) (Result, error) {
	r := Result{Name: c.Name, Description: c.Description}
	if err := c.run(ctx, db, ns, exp, &r); err != nil {
		err = fmt.Errorf("check %s: %w", c.Name, err)
		return Result{Name: c.Name, Description: c.Description, Verdict: Unknown,
			Error: err.Error()}, err
	}
	if r.Verdict == "" {
		r.Verdict = Pass
		if r.Violations > 0 {
			r.Verdict = Fail
		}
	}
	return r, nil
}

// Overall returns the run's verdict: Inconsistent when any check failed, else Inconclusive
// when any is Unknown, else Consistent.
func Overall(results []Result) Verdict {
	v := Consistent
	for _, r := range results {
		switch r.Verdict {
		case Fail:
			return Inconsistent
		case Unknown:
			v = Inconclusive
		}
	}
	return v
}

// Analyze refreshes the planner's statistics of the namespace's tables, which a run has just
// filled, so that the checks' joins get sensible plans. It is best effort: a database that
// rejects ANALYZE, as Aurora DSQL may, only makes the audit slower, so errors are ignored.
func Analyze(ctx context.Context, db DB, ns schema.Namespace) {
	for _, table := range []string{schema.AccountsTable, schema.MarketsTable, schema.OrdersTable,
		schema.TradesTable, schema.PositionsTable, schema.LedgerTable, schema.HistoryTable} {
		_, _ = db.Exec(ctx, "ANALYZE "+ns.Table(table))
	}
}
