package report

import (
	"fmt"
	"io"
	"sync"

	"parity/engine"
)

// Progress prints a load's per-second progress lines, in the manner of CockroachDB's
// workload tool: one header, then one line per snapshot. It is safe for concurrent use.
type Progress struct {
	mu     sync.Mutex
	w      io.Writer
	header bool
}

// NewProgress returns a progress printer writing to w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w}
}

// Print writes one snapshot.
func (p *Progress) Print(s engine.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.header {
		fmt.Fprintln(p.w, "_elapsed___orders(done/total)___ops/s(inst)___ops/s(cum)__p50(ms)__p95(ms)__p99(ms)_pMax(ms)__conflicts")
		p.header = true
	}
	var inst float64
	if s.Interval > 0 {
		inst = float64(s.IntervalOrders) / s.Interval.Seconds()
	}
	var cum float64
	if s.Elapsed > 0 {
		cum = float64(s.Stats.Fired) / s.Elapsed.Seconds()
	}
	l := Summarize(s.IntervalLatency)
	fmt.Fprintf(p.w, "%7.1fs %10d/%-10d %14.1f %12.1f %8.1f %8.1f %8.1f %8.1f %11d\n",
		s.Elapsed.Seconds(), s.Stats.Fired, s.Total, inst, cum, l.P50, l.P95, l.P99, l.Max, s.IntervalConflicts)
}
