package verify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/schema"
)

// Snapshot is the state of the books seen by one read-only transaction while orders fired.
type Snapshot struct {
	// At is the time since the monitor started.
	At        time.Duration
	LedgerSum int64
	Cash      int64
	Deposits  int64
	Negative  int64
	// NegativeAccounts names up to MaxWitnesses accounts that were negative.
	NegativeAccounts []Witness
	// Err is set when the snapshot could not be taken.
	Err error
}

// Violated reports whether the snapshot broke an invariant.
func (s Snapshot) Violated() bool {
	return s.Err == nil && (s.LedgerSum != 0 || s.Cash != s.Deposits || s.Negative > 0)
}

// Monitor checks the books while orders are firing: at start, at every interval and at
// stop, a read-only REPEATABLE READ transaction computes the ledger sum, cash conservation
// and negative balances. A violation seen mid-run is kept with its time, even if the final
// state balances. It is safe for concurrent use.
type Monitor struct {
	pool     *pgxpool.Pool
	ns       schema.Namespace
	log      *slog.Logger
	start    time.Time
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	snapshot []Snapshot
}

// StartMonitor takes a first snapshot and then one every interval until Stop. log may be
// nil.
func StartMonitor(ctx context.Context, pool *pgxpool.Pool, ns schema.Namespace,
	interval time.Duration, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &Monitor{pool: pool, ns: ns, log: log, start: time.Now(), cancel: cancel,
		done: make(chan struct{})}
	m.take(ctx)
	go func() {
		defer close(m.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				m.take(ctx)
			}
		}
	}()
	return m
}

// Stop takes a last snapshot, stops the monitor and returns every snapshot taken.
func (m *Monitor) Stop(ctx context.Context) []Snapshot {
	m.cancel()
	<-m.done
	m.take(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Snapshot(nil), m.snapshot...)
}

func (m *Monitor) take(ctx context.Context) {
	s := Snapshot{At: time.Since(m.start)}
	err := pgx.BeginTxFunc(ctx, m.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead,
		AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		sum, err := Summarize(ctx, tx, m.ns)
		if err != nil {
			return err
		}
		s.LedgerSum, s.Cash, s.Deposits, s.Negative = sum.LedgerSum, sum.Cash, sum.Deposited, sum.Negative
		if s.Negative > 0 {
			var r Result
			r, err = noNegativeBalance.Run(ctx, tx, m.ns, Expect{})
			s.NegativeAccounts = r.Witnesses
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the monitor's own cancellation, not a failed snapshot
		}
		s.Err = err
		m.log.Warn("mid-run snapshot failed", "namespace", m.ns.Name, "err", err)
	}
	if s.Violated() {
		m.log.Warn("mid-run snapshot broke an invariant", "at", s.At, "ledger_sum", s.LedgerSum,
			"cash", s.Cash, "deposits", s.Deposits, "negative", s.Negative)
	}
	m.mu.Lock()
	m.snapshot = append(m.snapshot, s)
	m.mu.Unlock()
}

// MidRunResult returns the check over the snapshots a Monitor took. It fails when any
// snapshot broke an invariant, with the earliest such snapshots as witnesses, and is
// Unknown when no snapshot could be taken.
func MidRunResult(snapshots []Snapshot) Result {
	r := Result{
		Name:        "mid-run-snapshots",
		Description: "while orders were firing, every snapshot had a balanced ledger, conserved cash and no negative balance",
		Expected:    "ledger sum 0, cash = deposits, 0 negative balances in every snapshot",
	}
	var failed int64
	for _, s := range snapshots {
		if s.Err != nil {
			failed++
			continue
		}
		r.Checked++
		if !s.Violated() {
			continue
		}
		r.Violations++
		if len(r.Witnesses) < MaxWitnesses {
			r.Witnesses = append(r.Witnesses, Witness{Kind: "snapshot", ID: fmt.Sprintf("t+%dms", s.At.Milliseconds()),
				Values: []Value{{"ledger sum", s.LedgerSum}, {"cash", s.Cash}, {"deposits", s.Deposits},
					{"negative balances", s.Negative}}})
		}
		for _, w := range s.NegativeAccounts {
			if len(r.Witnesses) < MaxWitnesses && !slices.ContainsFunc(r.Witnesses,
				func(x Witness) bool { return x.ID == w.ID }) {
				w.Name += fmt.Sprintf(" (negative at t+%dms)", s.At.Milliseconds())
				r.Witnesses = append(r.Witnesses, w)
			}
		}
	}
	r.Found = fmt.Sprintf("%d of %d snapshots broke an invariant", r.Violations, r.Checked)
	switch {
	case r.Violations > 0:
		r.Verdict = Fail
	case r.Checked == 0:
		r.Verdict = Unknown
		r.Error = fmt.Sprintf("no snapshot could be taken (%d failed)", failed)
	default:
		r.Verdict = Pass
	}
	return r
}
