// Package engine runs a scenario against the database: it opens the markets and funds the
// accounts, fires the order stream through the matching engine with retries, and settles
// the markets.
//
// Every order is one transaction. It bumps its market's row, which serializes matching per
// market, and reads the crossing side of the book in price-time priority. For each fill it
// moves cash with conditional updates, so that the database itself refuses a fill whose
// payer cannot fund it. Then it writes the order, the trades, their balanced ledger
// journals, the resting orders and the positions.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/scenario"
	"parity/schema"
)

// Options configure an Engine. The zero value of each field has the meaning its comment
// gives.
type Options struct {
	// MaxFills caps the fills of one order; 0 means DefaultMaxFills.
	MaxFills int
	// Faults breaks the engine on purpose; the zero value is the correct engine.
	Faults Faults
	// Logger receives progress and retry logs; nil discards them.
	Logger *slog.Logger
	// OrderPool, when not nil, carries the orders' transactions instead of the engine's
	// pool, for example one whose connections break at COMMIT on purpose. Setup,
	// settlement and the history always use the engine's pool.
	OrderPool *pgxpool.Pool
}

// Engine runs one scenario in one namespace. It is safe for concurrent use once Setup has
// returned.
type Engine struct {
	ns schema.Namespace
	sc *scenario.Scenario
	// orders runs the order transactions; admin runs setup, settlement and the history.
	orders *Runner
	admin  *Runner
	opts   Options
	log    *slog.Logger

	// deferredCredits counts the split-fill sabotage's deferred credits.
	deferredCredits atomic.Int64
	// inFlight counts, per market index, the order transactions open in that market.
	inFlight []atomic.Int32
}

// New returns an engine for the scenario in the namespace. The namespace must exist.
func New(pool *pgxpool.Pool, ns schema.Namespace, sc *scenario.Scenario, opts Options) (*Engine, error) {
	isolation := sc.Isolation
	if opts.Faults.LostUpdate {
		// The lost-update defect needs reads that see other transactions' commits.
		isolation = scenario.ReadCommitted
	}
	txOpts, err := TxOptions(isolation)
	if err != nil {
		return nil, err
	}
	if opts.MaxFills <= 0 {
		opts.MaxFills = DefaultMaxFills
	}
	orderPool := opts.OrderPool
	if orderPool == nil {
		orderPool = pool
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		ns: ns,
		sc: sc,
		orders: &Runner{Pool: orderPool, Policy: sc.Retry, TxOptions: txOpts,
			BlindRetry: opts.Faults.BlindRetry},
		admin:    &Runner{Pool: pool, Policy: adminRetry(sc.Retry), TxOptions: txOpts},
		opts:     opts,
		log:      log,
		inFlight: make([]atomic.Int32, sc.Markets),
	}, nil
}

// adminRetry is the retry policy of setup, settlement and the history: the scenario's,
// with at least 50 attempts, because those transactions must not give up where an order may.
func adminRetry(p scenario.Retry) scenario.Retry {
	p.MaxAttempts = max(p.MaxAttempts, 50)
	return p
}

// TxOptions returns the transaction options for a scenario isolation level.
func TxOptions(isolation string) (pgx.TxOptions, error) {
	switch isolation {
	case scenario.RepeatableRead, "":
		return pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, nil
	case scenario.Serializable:
		return pgx.TxOptions{IsoLevel: pgx.Serializable}, nil
	case scenario.ReadCommitted:
		return pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, nil
	}
	return pgx.TxOptions{}, fmt.Errorf("unknown isolation level %q: use %s, %s or %s",
		isolation, scenario.RepeatableRead, scenario.Serializable, scenario.ReadCommitted)
}

// PlaceOrder runs one order of the stream as a transaction, with retries, and returns what
// the client saw. rng draws backoff jitter and must not be shared between goroutines.
func (e *Engine) PlaceOrder(ctx context.Context, rng *rand.Rand, o scenario.Order) OrderRecord {
	t := Taker{
		ID:       o.ID,
		Seq:      o.Seq,
		Market:   e.sc.MarketID(o.Market),
		Account:  e.sc.AccountID(o.Account),
		Side:     o.Side,
		Price:    o.Price,
		Quantity: o.Quantity,
	}
	var m *Match
	var credits map[uuid.UUID][]Credit
	attempt := 0
	body := func(ctx context.Context, tx pgx.Tx) error {
		attempt++
		if e.opts.Faults.BlindRetry && attempt > 1 {
			// A naive client sends the order again as a new one.
			t.ID = uuid.New()
		}
		b, err := openSQLBook(ctx, tx, e.ns, t, attempt, e.opts.Faults)
		if err != nil {
			return err
		}
		m, err = Place(ctx, b, t, e.opts.MaxFills)
		credits = b.deferred
		return err
	}
	overlapped := false
	track := func() func() {
		if e.inFlight[o.Market].Add(1) > 1 {
			overlapped = true
		}
		return func() { e.inFlight[o.Market].Add(-1) }
	}
	res := e.orders.RunTracked(ctx, rng, body, e.orderExists(&t.ID), track)
	rec := newOrderRecord(o.Seq, t.ID, res, m)
	rec.Overlapped = overlapped
	if res.Outcome == Committed && len(credits) > 0 {
		e.creditLater(ctx, rng, credits)
	}
	return rec
}

// orderExists returns the lookup that resolves a lost COMMIT: the order row is written in
// the same transaction as everything else, so it exists exactly when the order committed.
func (e *Engine) orderExists(id *uuid.UUID) Lookup {
	return func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		var exists bool
		err := conn.QueryRow(ctx, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE id = $1)",
			e.ns.Table(schema.OrdersTable)), *id).Scan(&exists)
		return exists, err
	}
}
