package engine

import (
	"maps"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to one hour, with
// three significant figures. Values outside are clamped, so recording never fails.
const (
	histogramMin     = 1
	histogramMax     = int64(time.Hour / time.Microsecond)
	histogramSigFigs = 3
)

// NewHistogram returns an empty latency histogram in microseconds.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histogramMin, histogramMax, histogramSigFigs)
}

// RecordLatency records d in h, clamped to the histogram's range.
func RecordLatency(h *hdrhistogram.Histogram, d time.Duration) {
	v := min(max(d.Microseconds(), histogramMin), histogramMax)
	_ = h.RecordValue(v) // cannot fail: v is within the histogram's range
}

// Stats counts what a load did, order by order and attempt by attempt.
type Stats struct {
	// Orders by category; Fired is their sum.
	Fired     int64
	Committed int64
	Skipped   int64
	GaveUp    int64
	Failed    int64
	Unknown   int64
	Canceled  int64
	// LostCommits counts COMMIT replies lost, and Resolved those that a lookup settled.
	LostCommits int64
	Resolved    int64

	// Trades, Contracts and Notional sum the committed orders' fills.
	Trades    int64
	Contracts int64
	Notional  int64
	// UnfundedFills counts fills skipped because one side could not pay.
	UnfundedFills int64
	// Overlapped counts orders whose transaction overlapped another in the same market.
	Overlapped int64

	// Attempts maps a number of attempts to how many orders took that many, over orders
	// that committed or were skipped. GaveUp counts the rest.
	Attempts      map[int]int64
	TotalAttempts int64
	// Conflicts counts failed attempts by conflict label (40001, 40001/OC000, 40P01).
	Conflicts map[string]int64
	// Errors counts orders that failed, gave up or stayed unknown, by final error message.
	Errors map[string]int64
	// Backoff sums the time slept between attempts.
	Backoff time.Duration
}

// Retries returns the attempts beyond the first of every order.
func (s *Stats) Retries() int64 {
	return s.TotalAttempts - s.Fired
}

// maxErrorKinds bounds the distinct error messages a run keeps.
const maxErrorKinds = 20

// recorder collects statistics from the load's workers. It is safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	stats    Stats
	latency  *hdrhistogram.Histogram // every order, microseconds
	interval *hdrhistogram.Histogram // orders finished since the last snapshot
	attempt  *hdrhistogram.Histogram // every attempt, microseconds
	last     Stats                   // stats at the last snapshot
}

func newRecorder() *recorder {
	return &recorder{
		stats: Stats{
			Attempts:  map[int]int64{},
			Conflicts: map[string]int64{},
			Errors:    map[string]int64{},
		},
		latency:  NewHistogram(),
		interval: NewHistogram(),
		attempt:  NewHistogram(),
	}
}

func (r *recorder) record(rec *OrderRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.stats
	s.Fired++
	switch rec.Category() {
	case "committed":
		s.Committed++
	case "skipped":
		s.Skipped++
	case GaveUp.String():
		s.GaveUp++
	case Failed.String():
		s.Failed++
	case Unknown.String():
		s.Unknown++
	case Canceled.String():
		s.Canceled++
	}
	s.LostCommits += int64(rec.LostCommits)
	s.Resolved += int64(rec.ResolvedCommitted + rec.ResolvedNotCommitted)
	s.Trades += int64(rec.Fills)
	s.Contracts += rec.Filled
	s.Notional += rec.Notional
	s.UnfundedFills += int64(rec.UnfundedFills)
	if rec.Overlapped {
		s.Overlapped++
	}
	if rec.Outcome == Committed {
		s.Attempts[rec.Attempts]++
	}
	s.TotalAttempts += int64(rec.Attempts)
	for _, a := range rec.AttemptLog {
		if a.Class == ClassConflict {
			s.Conflicts[a.Label]++
		}
		s.Backoff += a.Backoff
		RecordLatency(r.attempt, a.Duration)
	}
	if rec.Err != nil && rec.Outcome != Canceled {
		msg := rec.Err.Error()
		if _, ok := s.Errors[msg]; ok || len(s.Errors) < maxErrorKinds {
			s.Errors[msg]++
		}
	}
	RecordLatency(r.latency, rec.Latency)
	RecordLatency(r.interval, rec.Latency)
}

// Snapshot is the load's progress at one moment.
type Snapshot struct {
	Elapsed time.Duration
	// Total is the number of orders in the stream.
	Total int64
	Stats Stats
	// IntervalOrders counts orders finished since the previous snapshot, and
	// IntervalLatency their latencies.
	Interval        time.Duration
	IntervalOrders  int64
	IntervalLatency *hdrhistogram.Histogram
	// IntervalConflicts counts conflicts since the previous snapshot.
	IntervalConflicts int64
}

func (r *recorder) snapshot(elapsed, interval time.Duration, total int64) Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	snap := Snapshot{
		Elapsed:           elapsed,
		Total:             total,
		Stats:             r.stats.clone(),
		Interval:          interval,
		IntervalOrders:    r.stats.Fired - r.last.Fired,
		IntervalLatency:   hdrhistogram.Import(r.interval.Export()),
		IntervalConflicts: sum(r.stats.Conflicts) - sum(r.last.Conflicts),
	}
	r.interval.Reset()
	r.last = snap.Stats
	return snap
}

func (s Stats) clone() Stats {
	c := s
	c.Attempts = maps.Clone(s.Attempts)
	c.Conflicts = maps.Clone(s.Conflicts)
	c.Errors = maps.Clone(s.Errors)
	return c
}

func sum[K comparable](m map[K]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
