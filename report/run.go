// Package report renders a run for people and for programs: the proof block and tables on
// a terminal, per-second progress lines, and a versioned JSON verdict.
package report

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"parity/engine"
	"parity/verify"
)

// Format is the version of the JSON verdict's layout. It changes only when a field changes
// meaning or goes away; new fields do not change it.
const Format = 1

// Run is everything a run reports. Amounts are int64 cents.
type Run struct {
	Format      int            `json:"format"`
	Tool        string         `json:"tool"`
	Verdict     verify.Verdict `json:"verdict"`
	Scenario    string         `json:"scenario"`
	Description string         `json:"description,omitempty"`
	Seed        uint64         `json:"seed"`
	Target      Target         `json:"target"`
	Schema      string         `json:"schema"`
	Isolation   string         `json:"isolation"`
	Namespace   string         `json:"namespace"`
	// Kept is set when the namespace was left in the database after the run.
	Kept bool `json:"kept"`
	// Sabotage names the deliberate engine defect the run used, if any.
	Sabotage string `json:"sabotage,omitempty"`
	// Interrupted is set when the run was stopped before it finished.
	Interrupted bool `json:"interrupted,omitempty"`

	Concurrency int    `json:"concurrency"`
	Markets     int64  `json:"markets"`
	Accounts    int64  `json:"accounts"`
	Orders      Orders `json:"orders"`
	Trades      int64  `json:"trades"`
	Contracts   int64  `json:"contracts"`
	Ledger      Ledger `json:"ledger"`

	// Throughput is orders finished per second of load.
	Throughput float64   `json:"throughput_per_second"`
	Durations  Durations `json:"durations_seconds"`
	// Latency is per order, from the first BEGIN to the outcome, backoff included;
	// AttemptLatency is per attempt.
	Latency        Latency         `json:"latency_ms"`
	AttemptLatency Latency         `json:"attempt_latency_ms"`
	Attempts       Attempts        `json:"attempts"`
	Errors         []ErrorCount    `json:"errors,omitempty"`
	Settlement     []Settlement    `json:"settlement"`
	Checks         []verify.Result `json:"checks"`
}

// Target describes where the run executed, with no secret in it.
type Target struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	Throwaway   bool   `json:"throwaway"`
}

// Orders counts the orders by what happened to them. Fired is the sum of the others.
type Orders struct {
	Total     int64 `json:"total"`
	Fired     int64 `json:"fired"`
	Committed int64 `json:"committed"`
	Skipped   int64 `json:"skipped"`
	Failed    int64 `json:"failed"`
	GaveUp    int64 `json:"gave_up"`
	Unknown   int64 `json:"unknown"`
	Canceled  int64 `json:"canceled"`
	// LostCommits counts COMMITs whose reply was lost, and Resolved those whose outcome a
	// lookup settled.
	LostCommits int64 `json:"lost_commits"`
	Resolved    int64 `json:"resolved"`
	// UnfundedFills counts fills skipped because one side could not pay.
	UnfundedFills int64 `json:"unfunded_fills"`
}

// Ledger is the proof block's money, read from the database after settlement.
type Ledger struct {
	Sum        int64 `json:"sum"`
	CashBefore int64 `json:"cash_before"`
	CashAfter  int64 `json:"cash_after"`
	Negative   int64 `json:"negative_balances"`
}

// Durations are the stages' wall-clock times.
type Durations struct {
	Setup  float64 `json:"setup"`
	Load   float64 `json:"load"`
	Settle float64 `json:"settle"`
	Audit  float64 `json:"audit"`
}

// Latency is a latency distribution's summary in milliseconds, read from an HdrHistogram
// with three significant figures.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Attempts describes retries. Distribution maps a number of attempts to the orders that
// committed after exactly that many.
type Attempts struct {
	Distribution map[string]int64 `json:"distribution"`
	Total        int64            `json:"total"`
	Retries      int64            `json:"retries"`
	GaveUp       int64            `json:"gave_up"`
	// Conflicts counts failed attempts by SQLSTATE, with DSQL's OC code when present.
	Conflicts      map[string]int64 `json:"conflicts"`
	BackoffSeconds float64          `json:"backoff_seconds"`
}

// ErrorCount is one error message and how many orders ended with it.
type ErrorCount struct {
	Message string `json:"message"`
	Orders  int64  `json:"orders"`
}

// Settlement is one market's settlement.
type Settlement struct {
	Market    string `json:"market"`
	Outcome   string `json:"outcome"`
	Positions int    `json:"positions"`
	Paid      int64  `json:"paid"`
	Released  int64  `json:"released"`
}

// SetLoad fills the run's order counts, throughput, latencies and retries from a load.
func (r *Run) SetLoad(total int64, res *engine.LoadResult) {
	s := res.Stats
	r.Orders = Orders{
		Total: total, Fired: s.Fired, Committed: s.Committed, Skipped: s.Skipped,
		Failed: s.Failed, GaveUp: s.GaveUp, Unknown: s.Unknown, Canceled: s.Canceled,
		LostCommits: s.LostCommits, Resolved: s.Resolved, UnfundedFills: s.UnfundedFills,
	}
	r.Durations.Load = res.Elapsed.Seconds()
	if res.Elapsed > 0 {
		r.Throughput = float64(s.Fired) / res.Elapsed.Seconds()
	}
	r.Latency = Summarize(res.Latency)
	r.AttemptLatency = Summarize(res.AttemptLatency)
	r.Attempts = Attempts{
		Distribution:   map[string]int64{},
		Total:          s.TotalAttempts,
		Retries:        s.Retries(),
		GaveUp:         s.GaveUp,
		Conflicts:      s.Conflicts,
		BackoffSeconds: s.Backoff.Seconds(),
	}
	for n, orders := range s.Attempts {
		r.Attempts.Distribution[strconv.Itoa(n)] = orders
	}
	for msg, n := range s.Errors {
		r.Errors = append(r.Errors, ErrorCount{msg, n})
	}
	slices.SortFunc(r.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Orders, a.Orders), cmp.Compare(a.Message, b.Message))
	})
}

// SetSettlement fills the run's settlement from the engine's.
func (r *Run) SetSettlement(ms []engine.MarketSettlement) {
	r.Settlement = r.Settlement[:0]
	for _, m := range ms {
		r.Settlement = append(r.Settlement, Settlement{
			Market: m.Name, Outcome: string(m.Outcome), Positions: m.Positions,
			Paid: m.Paid, Released: m.Released,
		})
	}
}

// SetSummary fills the proof block's figures from the database's.
func (r *Run) SetSummary(s verify.Summary) {
	r.Markets, r.Accounts, r.Trades, r.Contracts = s.Markets, s.Accounts, s.Trades, s.Contracts
	r.Ledger = Ledger{Sum: s.LedgerSum, CashBefore: s.Deposited, CashAfter: s.Cash, Negative: s.Negative}
}

// Summarize reads a latency histogram in microseconds into milliseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / float64(time.Millisecond/time.Microsecond) }
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P95:   ms(h.ValueAtQuantile(95)),
		P99:   ms(h.ValueAtQuantile(99)),
		Max:   ms(h.Max()),
	}
}

// ExitCode maps a verdict to the process exit code: 0 consistent, 1 inconsistent,
// 4 inconclusive.
func ExitCode(v verify.Verdict) int {
	switch v {
	case verify.Consistent:
		return 0
	case verify.Inconsistent:
		return 1
	}
	return 4
}
