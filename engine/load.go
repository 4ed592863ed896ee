package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"
)

// ErrConnectionLost is returned by Load when orders keep failing on lost connections with
// no commit in between: the database has gone away.
var ErrConnectionLost = errors.New("lost the database: orders keep failing on lost connections")

// LoadOptions configure Load.
type LoadOptions struct {
	// Progress, if not nil, receives a snapshot every Interval while orders are firing,
	// and a last one when they stop. It runs on its own goroutine.
	Progress func(Snapshot)
	// Interval between progress snapshots; 0 means one second.
	Interval time.Duration
}

// LoadResult is the client's view of a load.
type LoadResult struct {
	// Records holds one record per order of the stream, indexed by Seq. Orders that were
	// never fired, because the run stopped early, have a zero Outcome.
	Records []OrderRecord
	Stats   Stats
	Elapsed time.Duration
	// Latency holds every fired order's latency, and AttemptLatency every attempt's, in
	// microseconds.
	Latency        *hdrhistogram.Histogram
	AttemptLatency *hdrhistogram.Histogram
}

// Load fires the scenario's order stream: Concurrency workers take orders in stream order
// and run each as a transaction. The pool is warmed first and the workers start together,
// so the first Concurrency orders are in flight at once. When ctx ends, Load stops firing,
// lets the orders in flight finish or cancel, and returns what was done with ctx's error.
func (e *Engine) Load(ctx context.Context, opts LoadOptions) (*LoadResult, error) {
	total := e.sc.TotalOrders()
	if err := warm(ctx, e.orders.Pool, e.sc.Concurrency); err != nil {
		return nil, err
	}
	l := &loader{e: e, total: total, records: make([]OrderRecord, total), rec: newRecorder()}
	stopProgress := l.progress(opts)

	g, gctx := errgroup.WithContext(ctx)
	l.start = time.Now()
	for w := range e.sc.Concurrency {
		g.Go(func() error { return l.work(gctx, uint64(w)) })
	}
	err := g.Wait()
	elapsed := time.Since(l.start)
	stopProgress(elapsed)

	res := &LoadResult{
		Records:        l.records,
		Stats:          l.rec.stats,
		Elapsed:        elapsed,
		Latency:        l.rec.latency,
		AttemptLatency: l.rec.attempt,
	}
	if err == nil {
		err = ctx.Err()
	}
	return res, err
}

type loader struct {
	e       *Engine
	total   int64
	records []OrderRecord
	rec     *recorder
	start   time.Time
	next    atomic.Int64
	// lostRun counts orders in a row that ended on a lost connection.
	lostRun atomic.Int64
}

// work fires orders until the stream or the context ends. Each worker has its own random
// source for backoff jitter, seeded from the scenario seed and the worker's index.
func (l *loader) work(ctx context.Context, worker uint64) error {
	rng := rand.New(rand.NewPCG(l.e.sc.Seed, worker))
	for ctx.Err() == nil {
		seq := l.next.Add(1) - 1
		if seq >= l.total {
			return nil
		}
		if err := l.pace(ctx, seq); err != nil {
			return nil
		}
		start := time.Now()
		r := l.e.PlaceOrder(ctx, rng, l.e.sc.Order(seq))
		r.Latency = time.Since(start)
		if r.Outcome == Canceled && ctx.Err() != nil {
			// Stopped by the run, not by the database: the order never happened.
			r.AttemptLog = nil
		}
		l.rec.record(&r)
		// The recorder has counted the attempts; dropping them keeps a record small, about
		// a hundred bytes, for runs of millions of orders.
		r.AttemptLog = nil
		l.records[seq] = r
		if err := l.watchConnection(&r); err != nil {
			return err
		}
	}
	return nil
}

// pace holds order seq until its turn when the scenario caps the rate.
func (l *loader) pace(ctx context.Context, seq int64) error {
	if l.e.sc.Rate <= 0 {
		return nil
	}
	due := l.start.Add(time.Duration(seq) * time.Second / time.Duration(l.e.sc.Rate))
	return sleep(ctx, time.Until(due))
}

// watchConnection ends the load when more orders than there are workers, and at least 50,
// have ended in a row on a lost connection.
func (l *loader) watchConnection(r *OrderRecord) error {
	if r.Outcome == Committed {
		l.lostRun.Store(0)
		return nil
	}
	if Classify(r.Err) != ClassConnection {
		return nil
	}
	if n := l.lostRun.Add(1); n > int64(max(50, l.e.sc.Concurrency)) {
		return fmt.Errorf("%w: %d in a row, the last: %w", ErrConnectionLost, n, r.Err)
	}
	return nil
}

// progress starts the snapshot ticker and returns the function that stops it. Stopping
// sends a last snapshot covering the time since the previous one.
func (l *loader) progress(opts LoadOptions) func(time.Duration) {
	if opts.Progress == nil {
		return func(time.Duration) {}
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	done := make(chan time.Duration)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		last := time.Duration(0)
		for {
			select {
			case elapsed := <-done:
				opts.Progress(l.rec.snapshot(elapsed, elapsed-last, l.total))
				return
			case now := <-ticker.C:
				elapsed := now.Sub(l.start)
				opts.Progress(l.rec.snapshot(elapsed, elapsed-last, l.total))
				last = elapsed
			}
		}
	}()
	return func(elapsed time.Duration) {
		done <- elapsed
		<-stopped
	}
}

// warm opens n connections at once, so that the first orders do not wait for connection
// setup and fire together.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	results := make(chan *pgxpool.Conn, n)
	g, gctx := errgroup.WithContext(ctx)
	for range n {
		g.Go(func() error {
			c, err := pool.Acquire(gctx)
			if err != nil {
				return fmt.Errorf("open %d connections at once (the concurrency; a server with "+
					"a lower max_connections refuses some, so lower the concurrency or raise "+
					"it): %w", n, err)
			}
			results <- c
			return nil
		})
	}
	err := g.Wait()
	close(results)
	for c := range results {
		conns = append(conns, c)
	}
	return err
}
