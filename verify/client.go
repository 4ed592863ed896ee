package verify

import (
	"context"
	"fmt"

	"parity/schema"
)

// ContentionFigures are the client's evidence that transactions conflicted.
type ContentionFigures struct {
	// Retries counts attempts beyond each order's first, and GaveUp the orders whose
	// every attempt failed.
	Retries int64
	GaveUp  int64
	// UnfundedFills counts fills skipped because one side could not pay.
	UnfundedFills int64
	// Overlapped counts orders whose transaction overlapped another in the same market,
	// which must have waited for it or failed: at READ COMMITTED conflicts show as waits.
	Overlapped int64
}

// Contention returns the check that the run really had concurrent, conflicting
// transactions: a retry, an order given up, or two transactions open at once in one market.
// Skipped fills are reported but prove nothing, because a serial run skips them too. A run
// without evidence may have been serial, which proves nothing about concurrency, so when
// the scenario requires contention such a run's verdict is Unknown.
func Contention(required bool, f ContentionFigures) Result {
	r := Result{
		Name:        "contention",
		Description: "transactions really conflicted: retries, orders given up, or transactions open at once in one market",
		Verdict:     Pass,
		Checked:     1,
		Found: fmt.Sprintf("%d retries, %d gave up, %d skipped fills, %d orders overlapped another in their market",
			f.Retries, f.GaveUp, f.UnfundedFills, f.Overlapped),
		Details: map[string]int64{"retries": f.Retries, "gave_up": f.GaveUp,
			"unfunded_fills": f.UnfundedFills, "overlapped": f.Overlapped},
	}
	if required {
		r.Expected = "some evidence of contention"
	} else {
		r.Expected = "none required"
	}
	if required && f.Retries == 0 && f.GaveUp == 0 && f.Overlapped == 0 {
		r.Verdict = Unknown
		r.Error = "no transaction was retried, gave up or overlapped another in its market: the run may have been serial"
	}
	return r
}

// Outcomes returns the check that every order fired has a known outcome. Orders whose
// COMMIT reply was lost and could not be resolved, and orders that failed with an error
// retrying cannot fix, leave the run Unknown rather than failed. Nothing shows the books
// are wrong, but the run did not do what it set out to.
func Outcomes(fired, failed, unknown int64, errors map[string]int64) Result {
	r := Result{
		Name:        "outcomes-known",
		Description: "every order committed, was skipped or gave up, with no error and no unknown outcome",
		Verdict:     Pass,
		Checked:     fired,
		Violations:  failed + unknown,
		Expected:    "0 failed, 0 unknown",
		Found:       fmt.Sprintf("%d failed, %d unknown", failed, unknown),
	}
	if r.Violations > 0 {
		r.Verdict = Unknown
		r.Error = fmt.Sprintf("%d orders failed and %d have unknown outcomes", failed, unknown)
		if msg, n := mostCommon(errors); n > 0 {
			r.Error += fmt.Sprintf("; the most common error (%d orders): %s", n, msg)
		}
	}
	return r
}

func mostCommon(counts map[string]int64) (string, int64) {
	var best string
	var most int64
	for msg, n := range counts {
		if n > most || (n == most && msg < best) {
			best, most = msg, n
		}
	}
	return best, most
}

// Summary is the proof block's figures, read from the database.
type Summary struct {
	Markets  int64 `json:"markets"`
	Accounts int64 `json:"accounts"`
	Orders   int64 `json:"orders"`
	Trades   int64 `json:"trades"`
	// Contracts sums the quantity of every trade.
	Contracts int64 `json:"contracts"`
	// LedgerSum is the sum of every ledger entry, in cents.
	LedgerSum int64 `json:"ledger_sum"`
	// Deposited and Cash are the cents deposited and the free plus locked cash now held.
	Deposited int64 `json:"deposited"`
	Cash      int64 `json:"cash"`
	// Negative counts accounts with negative free or locked cash.
	Negative int64 `json:"negative_balances"`
}

// Summarize reads the proof block's figures from the namespace in one query.
func Summarize(ctx context.Context, db DB, ns schema.Namespace) (Summary, error) {
	var s Summary
	err := db.QueryRow(ctx, fmt.Sprintf(`SELECT
		(SELECT count(*) FROM %[1]s),
		(SELECT count(*) FROM %[2]s),
		(SELECT count(*) FROM %[3]s),
		(SELECT count(*) FROM %[4]s),
		(SELECT COALESCE(sum(quantity), 0)::bigint FROM %[4]s),
		(SELECT COALESCE(sum(amount), 0)::bigint FROM %[5]s),
		COALESCE(sum(deposited), 0)::bigint,
		COALESCE(sum(free + locked), 0)::bigint,
		count(*) FILTER (WHERE free < 0 OR locked < 0)
		FROM %[2]s`,
		ns.Table(schema.MarketsTable), ns.Table(schema.AccountsTable),
		ns.Table(schema.OrdersTable), ns.Table(schema.TradesTable), ns.Table(schema.LedgerTable))).
		Scan(&s.Markets, &s.Accounts, &s.Orders, &s.Trades, &s.Contracts, &s.LedgerSum,
			&s.Deposited, &s.Cash, &s.Negative)
	if err != nil {
		return Summary{}, fmt.Errorf("summarize %s: %w", ns.Name, err)
	}
	return s, nil
}
