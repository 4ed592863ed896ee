package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/scenario"
)

// Outcome is the end of a transaction, or of the order it carried, as the client saw it.
type Outcome uint8

// Transaction outcomes.
const (
	// Committed: COMMIT succeeded, or a lookup after a lost COMMIT found the order.
	Committed Outcome = iota + 1
	// GaveUp: every attempt ended in a conflict or a lost connection.
	GaveUp
	// Failed: an error that retrying cannot fix; nothing was committed.
	Failed
	// Unknown: the connection was lost during COMMIT and the lookup could not tell.
	Unknown
	// Canceled: the run stopped before the transaction could finish; nothing was committed.
	Canceled
)

var outcomeNames = [...]string{"", "committed", "gave-up", "failed", "unknown", "canceled"}

// String returns the outcome's name used in reports.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return "invalid"
}

// Attempt records one attempt of a transaction.
type Attempt struct {
	// N is the attempt number, from 1.
	N int
	// Class is the class of the attempt's error, ClassNone when it committed.
	Class Class
	// Label is the conflict label (40001, 40001/OC000, 40P01) or the SQLSTATE of a failure.
	Label string
	// Duration runs from BEGIN to the end of COMMIT or ROLLBACK.
	Duration time.Duration
	// Backoff is the sleep before the next attempt; zero after the last.
	Backoff time.Duration
	// CommitLost is set when COMMIT was sent but its reply never arrived.
	CommitLost bool
	// Resolved is set when a lookup settled a lost COMMIT's outcome. Class is then
	// ClassNone when the transaction had committed.
	Resolved bool
}

// Result is the outcome of running one transaction with retries.
type Result struct {
	Outcome  Outcome
	Attempts []Attempt
	// Err is the last error, nil when the transaction committed.
	Err error
}

// Runner runs transactions with retries on serialization failures and deadlocks. It is safe
// for concurrent use.
type Runner struct {
	Pool   *pgxpool.Pool
	Policy scenario.Retry
	// TxOptions are used for every BEGIN. The zero value begins at the server's default
	// isolation level.
	TxOptions pgx.TxOptions
	// BlindRetry retries a transaction whose COMMIT reply was lost without looking it up:
	// the defect of a naive client, kept for the blind-retry sabotage.
	BlindRetry bool
}

// Body is one attempt's work inside a transaction. It runs again from the start on every
// retry, so it must not keep state between attempts.
type Body func(ctx context.Context, tx pgx.Tx) error

// Lookup reports whether a transaction whose COMMIT was lost had committed. It runs on a
// fresh connection, opened for it outside the pool.
type Lookup func(ctx context.Context, conn *pgx.Conn) (bool, error)

// Run runs body in a transaction until it commits, the policy's attempts are used up, or an
// error occurs that retrying cannot fix. It retries from BEGIN on 40001 and 40P01, and on a
// connection lost before COMMIT was sent. A connection lost during COMMIT leaves the outcome
// unknown: Run calls lookup on a fresh connection, and retries only if the transaction is
// known not to have committed. A nil lookup leaves such outcomes Unknown. rng
// draws the backoff jitter and must not be shared between goroutines.
func (r *Runner) Run(ctx context.Context, rng *rand.Rand, body Body, lookup Lookup) Result {
	return r.RunTracked(ctx, rng, body, lookup, nil)
}

// Track is called as each attempt's transaction begins; the function it returns is called
// when that transaction ends, by COMMIT or ROLLBACK.
type Track func() (end func())

// RunTracked is Run with track called around every attempt's transaction; track may be nil.
func (r *Runner) RunTracked(ctx context.Context, rng *rand.Rand, body Body, lookup Lookup, track Track) Result {
	var res Result
	for n := 1; ; n++ {
		start := time.Now()
		err, commitLost, pid := r.attempt(ctx, body, track)
		a := Attempt{N: n, Class: Classify(err), Duration: time.Since(start)}
		if a.Class == ClassConflict {
			a.Label = ConflictLabel(err)
		} else {
			a.Label = SQLState(err)
		}
		a.CommitLost = commitLost
		if commitLost && !r.BlindRetry {
			committed, lookupErr := resolve(ctx, r.Pool, lookup, pid)
			if lookupErr != nil {
				res.Attempts = append(res.Attempts, a)
				res.Outcome, res.Err = Unknown, errors.Join(err, lookupErr)
				return res
			}
			a.Resolved = true
			if committed {
				err, a.Class = nil, ClassNone
			}
		}

		outcome, retry := decide(a.Class, ctx.Err() != nil)
		if retry && n < r.Policy.MaxAttempts {
			a.Backoff = Backoff(r.Policy, n, rng)
		}
		res.Attempts = append(res.Attempts, a)
		if !retry || n >= r.Policy.MaxAttempts {
			if retry {
				outcome = GaveUp
			}
			res.Outcome, res.Err = outcome, err
			return res
		}
		if err := sleep(ctx, a.Backoff); err != nil {
			res.Outcome, res.Err = Canceled, err
			return res
		}
	}
}

// decide maps an attempt's error class to an outcome, and whether to try again.
func decide(c Class, canceled bool) (Outcome, bool) {
	switch {
	case c == ClassNone:
		return Committed, false
	case canceled || c == ClassCanceled:
		return Canceled, false
	case c == ClassConflict || c == ClassConnection:
		return GaveUp, true
	default:
		return Failed, false
	}
}

// attempt runs one transaction. commitLost is true when COMMIT may have reached the server
// but its reply did not reach the client. pid is the server process of the session.
func (r *Runner) attempt(ctx context.Context, body Body, track Track) (err error, commitLost bool, pid uint32) {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err), false, 0
	}
	defer conn.Release()
	pid = conn.Conn().PgConn().PID()
	if track != nil {
		defer track()()
	}

	tx, err := conn.BeginTx(ctx, r.TxOptions)
	if err != nil {
		return fmt.Errorf("begin: %w", err), false, pid
	}
	if err := body(ctx, tx); err != nil {
		// The rollback's own error adds nothing: either the connection is gone, which
		// err already shows, or the server ends the transaction anyway.
		rollbackCtx, cancel := CleanupContext(ctx)
		_ = tx.Rollback(rollbackCtx)
		cancel()
		return err, false, pid
	}
	err = tx.Commit(ctx)
	if err == nil {
		return nil, false, pid
	}
	var pgErr *pgconn.PgError
	lost := !errors.As(err, &pgErr) && !pgconn.SafeToRetry(err) &&
		!errors.Is(err, pgx.ErrTxCommitRollback) && Classify(err) != ClassPermanent
	return fmt.Errorf("commit: %w", err), lost, pid
}

// sessionEndTimeout bounds the wait for a lost session's server process to exit.
const sessionEndTimeout = 10 * time.Second

// resolve decides whether a transaction whose COMMIT reply was lost committed. A COMMIT
// that reached the server may still be running when the client notices the loss, and a
// lookup made then would miss it and invite a retry that applies the order twice. So
// resolve first waits until the lost session's server process has exited, which ends its
// transaction one way or the other, and only then runs lookup.
func resolve(ctx context.Context, pool *pgxpool.Pool, lookup Lookup, pid uint32) (bool, error) {
	if lookup == nil {
		return false, errors.New("resolve lost commit: no lookup for this transaction")
	}
	// The run's context may be what cut the connection, and the lookup must still finish,
	// but a run that is stopping gets only a short wait: its database may be gone.
	budget := lookupTimeout
	if ctx.Err() != nil {
		budget = lookupTimeoutStopping
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
	defer cancel()
	var err error
	for attempt := 1; attempt <= lookupAttempts; attempt++ {
		var committed bool
		if committed, err = lookupOnce(ctx, pool, lookup, pid); err == nil {
			return committed, nil
		}
		if sleepErr := sleep(ctx, time.Duration(attempt)*100*time.Millisecond); sleepErr != nil {
			break
		}
	}
	return false, fmt.Errorf("resolve lost commit: %w", err)
}

// Bounds on resolving a lost COMMIT: tries, which may meet a server that is restarting,
// and the time for all of them, shorter when the run is stopping.
const (
	lookupAttempts        = 3
	lookupTimeout         = 30 * time.Second
	lookupTimeoutStopping = 5 * time.Second
)

// lookupOnce opens a new connection, not one from the pool: a pooled connection may be one
// that broke with the lost session's.
func lookupOnce(ctx context.Context, pool *pgxpool.Pool, lookup Lookup, pid uint32) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := CleanupContext(ctx)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if err := waitForSessionEnd(ctx, conn, pid); err != nil {
		return false, err
	}
	return lookup(ctx, conn)
}

// waitForSessionEnd waits until no server process with the given pid is left.
//
// NOTE: Aurora DSQL's pg_stat_activity is not known to list other sessions' processes.
// Where the query fails, or pid is unknown, the lookup runs without the wait, and a COMMIT
// still in flight can be missed.
func waitForSessionEnd(ctx context.Context, conn *pgx.Conn, pid uint32) error {
	if pid == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, sessionEndTimeout)
	defer cancel()
	for {
		var alive bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
			int64(pid)).Scan(&alive)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("server process %d still running after %v", pid, sessionEndTimeout)
			}
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				return nil // no usable pg_stat_activity: see the note above
			}
			return err
		}
		if !alive {
			return nil
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("server process %d still running after %v", pid, sessionEndTimeout)
		}
	}
}

// cleanupTimeout bounds a cleanup step, such as a ROLLBACK, that runs after the context
// it belongs to may have ended.
const cleanupTimeout = 5 * time.Second

// CleanupContext returns a context for a cleanup step of ctx's work: it outlives ctx's
// cancellation, so that the step still runs, but not by more than a few seconds, so that an
// unresponsive server cannot hold it.
func CleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// Backoff returns the sleep after failed attempt n (from 1): exponential backoff with full
// jitter, drawn uniformly from [0, min(MaxBackoff, BaseBackoff*2^(n-1))).
func Backoff(p scenario.Retry, n int, rng *rand.Rand) time.Duration {
	ceiling := p.MaxBackoff
	if n-1 < 62 && p.BaseBackoff < p.MaxBackoff>>(n-1) {
		ceiling = p.BaseBackoff << (n - 1)
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rng.Int64N(int64(ceiling)))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
