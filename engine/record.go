package engine

import (
	"time"

	"github.com/google/uuid"

	"parity/schema"
)

// OrderRecord is one order as the client saw it: the client's own history, which the audit
// checks against the database.
type OrderRecord struct {
	Seq int64
	// ID is the order's id as last sent: the stream's id, unless the blind-retry sabotage
	// resent the order under a new one.
	ID      uuid.UUID
	Outcome Outcome
	// Attempts counts the transaction's attempts; Conflicts counts those that ended in a
	// serialization failure or deadlock.
	Attempts  int
	Conflicts int
	// LostCommits counts attempts whose COMMIT reply was lost. Of those, lookups found
	// ResolvedCommitted committed and ResolvedNotCommitted not; the rest stayed unresolved.
	LostCommits          int
	ResolvedCommitted    int
	ResolvedNotCommitted int
	// Status and Reason are the order's final status and cancel reason, when committed.
	Status string
	Reason string
	// Filled, Fills and Notional describe the order's own fills when committed: contracts,
	// trades and the cents that changed hands.
	Filled   int64
	Fills    int
	Notional int64
	// UnfundedFills counts fills skipped because one side could not pay.
	UnfundedFills int
	// Overlapped is set when one of the order's transactions began while another order's
	// was open in the same market. Every order writes its market's row, so the two
	// conflicted: one waited for the other's lock, or failed and retried.
	Overlapped bool
	// Latency runs from the first BEGIN to the final outcome, backoff included.
	Latency time.Duration
	// AttemptLog holds the attempts until the load has counted them into its statistics;
	// Load leaves it nil to keep the record small.
	AttemptLog []Attempt
	// Err is the last error of an order that did not commit.
	Err error
}

// Category returns how reports count the order: committed, skipped (committed, but its own
// account could not fund a fill, so its remainder was cancelled), or the outcome's name.
func (r *OrderRecord) Category() string {
	if r.Outcome == Committed && r.Reason == schema.ReasonUnfunded {
		return "skipped"
	}
	return r.Outcome.String()
}

func newOrderRecord(seq int64, id uuid.UUID, res Result, m *Match) OrderRecord {
	rec := OrderRecord{
		Seq:        seq,
		ID:         id,
		Outcome:    res.Outcome,
		Attempts:   len(res.Attempts),
		AttemptLog: res.Attempts,
		Err:        res.Err,
	}
	for _, a := range res.Attempts {
		if a.Class == ClassConflict {
			rec.Conflicts++
		}
		if a.CommitLost {
			rec.LostCommits++
		}
		switch {
		case a.Resolved && a.Class == ClassNone:
			rec.ResolvedCommitted++
		case a.Resolved:
			rec.ResolvedNotCommitted++
		}
	}
	if res.Outcome == Committed && m != nil {
		rec.Status, rec.Reason = m.Status, m.Reason
		rec.Filled, rec.Fills, rec.UnfundedFills = m.Filled, len(m.Fills), m.UnfundedFills
		for _, f := range m.Fills {
			rec.Notional += f.Price * f.Quantity
		}
	}
	return rec
}
