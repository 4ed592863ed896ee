package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/report"
	"parity/scenario"
	"parity/schema"
	"parity/target"
	"parity/verify"
)

// Causes of a run's cancellation other than the user's.
var (
	// errServerLost: the throwaway server exited.
	errServerLost = errors.New("the throwaway PostgreSQL server exited during the run")
	// errDatabaseLost: the database stopped responding.
	errDatabaseLost = errors.New("the database stopped responding during the run")
)

// The watchdog pings the database every watchInterval, gives each ping watchTimeout, and
// gives up on the database after watchFailures failed pings in a row.
const (
	watchInterval = 2 * time.Second
	watchTimeout  = 5 * time.Second
	watchFailures = 3
)

// pingTimeout bounds pgxpool's health check of an idle connection.
const pingTimeout = 5 * time.Second

// lastSnapshotTimeout bounds the monitor's last snapshot after the load.
const lastSnapshotTimeout = 5 * time.Second

// defaultConnectTimeout bounds a new connection when the target sets no connect_timeout,
// so that a frozen server fails the run instead of hanging it.
const defaultConnectTimeout = 15 * time.Second

// cleanupTimeout bounds dropping the namespace and stopping the server, which run after
// the run's own context may have ended.
const cleanupTimeout = 30 * time.Second

// execute runs the configured scenario from target to report: start or reach the database,
// create the run's namespace, fund, load, settle, audit and report, then clean up.
func (e *env) execute(ctx context.Context, cfg *runConfig) (int, error) {
	log, err := newLogger(e.stderr, cfg.logLevel)
	if err != nil {
		return exitUsage, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	tgt, err := cfg.target.open(ctx, target.LocalOptions{
		MaxConnections: cfg.sc.Concurrency + 20,
		Keep:           cfg.keepDB,
		Logger:         log,
	})
	if err != nil {
		return exitInfra, err
	}
	var nsName string
	defer e.closeTarget(tgt, cfg, &nsName, log)
	if local, ok := tgt.(*target.Local); ok {
		go func() {
			select {
			case <-local.Done():
				cancel(errServerLost)
			case <-ctx.Done():
			}
		}()
	}

	pool, err := openPool(ctx, tgt, cfg.sc.Concurrency+4)
	if err != nil {
		return exitInfra, err
	}
	defer pool.Close()
	// Deferred after the cleanup above, so it runs first: a watchdog left running would
	// report the server shutting down as a lost database.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	go watchDatabase(watchCtx, pool, watchInterval, cancel, log)

	dialect := schema.PostgreSQL
	if tgt.Kind() == target.DSQL {
		dialect = schema.DSQL
	}
	ns, err := schema.Create(ctx, pool, dialect, cfg.variant, schema.NewName(time.Now()), schema.Meta{
		Scenario: cfg.sc.Name, Seed: cfg.sc.Seed, Isolation: cfg.sc.Isolation,
		Sabotage: cfg.sabotage, CreatedAt: time.Now(),
	})
	if err != nil {
		return exitInfra, runError(ctx, fmt.Errorf("create namespace: %w", err))
	}
	log.Info("namespace created", "namespace", ns.Name, "schema", cfg.variant.Name)
	nsName = ns.Name
	if !cfg.keep {
		defer func() {
			switch {
			case !lostDatabase(context.Cause(ctx)):
				dropNamespace(pool, ns.Name, log)
			case !isLocal(tgt):
				// A throwaway server goes with its namespace; an existing one keeps it.
				log.Error("the database was lost, so the namespace is left in it; remove it with "+
					"DROP SCHEMA "+ns.Name+" CASCADE once the database is reachable", "namespace", ns.Name)
			}
		}()
	}

	run := newRun(cfg, tgt, ns)
	verdict, err := e.prove(ctx, cfg, tgt, pool, &ns, run, log)
	if err != nil {
		return exitInfra, runError(ctx, err)
	}
	if err := e.writeReport(cfg, run); err != nil {
		return exitInfra, err
	}
	if cfg.keep && cfg.target.given() {
		fmt.Fprintf(e.stdout, "\nThe namespace is kept. Audit the run again:\n  parity verify --namespace %s "+
			"--dsn URL (the same server)\n", ns.Name)
	}
	if run.Interrupted {
		return exitInterrupted, nil
	}
	return report.ExitCode(verdict), nil
}

// runError names the real cause when the run's context was cancelled by a lost server or
// database.
func runError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); lostDatabase(cause) {
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

func isLocal(t target.Target) bool {
	_, ok := t.(*target.Local)
	return ok
}

func lostDatabase(cause error) bool {
	return errors.Is(cause, errServerLost) || errors.Is(cause, errDatabaseLost)
}

// watchDatabase pings the database every interval on a connection of its own, outside the
// pool that busy orders may exhaust, and cancels the run with errDatabaseLost when the
// database stops responding. It returns when ctx ends.
func watchDatabase(ctx context.Context, pool *pgxpool.Pool, interval time.Duration,
	cancel context.CancelCauseFunc, log *slog.Logger) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeCtx, cancel := engine.CleanupContext(ctx)
			defer cancel()
			conn.Close(closeCtx)
		}
	}()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		pingCtx, stop := context.WithTimeout(ctx, watchTimeout)
		err := ping(pingCtx, pool, &conn)
		stop()
		if err == nil || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		log.Warn("database ping failed", "failures", failures, "err", err)
		if failures >= watchFailures {
			cancel(fmt.Errorf("%w: %d pings in a row failed, the last: %w", errDatabaseLost, failures, err))
			return
		}
	}
}

// ping checks the database on *conn, reconnecting when there is none or it broke.
func ping(ctx context.Context, pool *pgxpool.Pool, conn **pgx.Conn) error {
	if *conn == nil {
		c, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
		if err != nil {
			return err
		}
		*conn = c
	}
	if err := (*conn).Ping(ctx); err != nil {
		closeCtx, cancel := engine.CleanupContext(ctx)
		defer cancel()
		(*conn).Close(closeCtx)
		*conn = nil
		return err
	}
	return nil
}

// closeTarget releases the target and, for a kept throwaway server, prints how to reach it
// and, when the run created one, how to audit its namespace ns again.
func (e *env) closeTarget(t target.Target, cfg *runConfig, ns *string, log *slog.Logger) {
	releaseTarget(t, log)
	if local, ok := t.(*target.Local); ok && cfg.keepDB {
		fmt.Fprintf(e.stdout, "\nThe throwaway server is still running (--keep-db).\n%s\n", local.ConnectHint())
		if *ns != "" {
			fmt.Fprintf(e.stdout, "Audit the run again:\n  parity verify --namespace %s --dsn '%s'\n",
				*ns, local.ConnString())
		}
	}
}

func openPool(ctx context.Context, t target.Target, maxConns int) (*pgxpool.Pool, error) {
	config, err := poolConfig(t, maxConns)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.Describe(), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", t.Describe(), err)
	}
	return pool, nil
}

// poolConfig returns the target's pool config with a connect and a ping timeout when it
// has none.
func poolConfig(t target.Target, maxConns int) (*pgxpool.Config, error) {
	config, err := t.PoolConfig(maxConns)
	if err != nil {
		return nil, fmt.Errorf("configure connections to %s: %w", t.Describe(), err)
	}
	if config.ConnConfig.ConnectTimeout == 0 {
		config.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if config.PingTimeout == 0 {
		// pgxpool pings an idle connection before handing it out, and without a timeout a
		// frozen server holds that ping, and then the pool's Close, forever.
		config.PingTimeout = pingTimeout
	}
	return config, nil
}

func dropNamespace(pool *pgxpool.Pool, name string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := schema.Drop(ctx, pool, name); err != nil {
		log.Error("drop namespace; it is left in the database, remove it with DROP SCHEMA "+
			name+" CASCADE once the database is reachable", "namespace", name, "err", err)
		return
	}
	log.Debug("namespace dropped", "namespace", name)
}

func newRun(cfg *runConfig, t target.Target, ns schema.Namespace) *report.Run {
	_, throwaway := t.(*target.Local)
	return &report.Run{
		Format:      report.Format,
		Tool:        schema.Tool,
		Scenario:    cfg.sc.Name,
		Description: cfg.sc.Description,
		Seed:        cfg.sc.Seed,
		Target:      report.Target{Kind: t.Kind().String(), Description: t.Describe(), Throwaway: throwaway},
		Schema:      cfg.variant.Name,
		Isolation:   cfg.sc.Isolation,
		Namespace:   ns.Name,
		Kept:        cfg.keep,
		Sabotage:    cfg.sabotage,
		Concurrency: cfg.sc.Concurrency,
		Orders:      report.Orders{Total: cfg.sc.TotalOrders()},
	}
}

// prove funds, loads, settles and audits, filling run as it goes. It returns the verdict;
// an interrupted run is marked in run and returns without settling or auditing.
func (e *env) prove(ctx context.Context, cfg *runConfig, t target.Target, pool *pgxpool.Pool,
	ns *schema.Namespace, run *report.Run, log *slog.Logger) (verify.Verdict, error) {
	orderPool, faults, err := openOrderPool(ctx, cfg, t, pool)
	if err != nil {
		return "", err
	}
	if orderPool != pool {
		defer orderPool.Close()
	}
	if cfg.sabotage != "" {
		log.Warn("SABOTAGED ENGINE: this run is broken on purpose", "sabotage", cfg.sabotage)
	}
	eng, err := engine.New(pool, *ns, cfg.sc, engine.Options{
		Logger: log, Faults: cfg.faults, OrderPool: orderPool,
	})
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := eng.Setup(ctx); err != nil {
		return "", err
	}
	run.Durations.Setup = time.Since(start).Seconds()

	res, snapshots, err := e.load(ctx, cfg, eng, pool, *ns, log)
	if res != nil {
		run.SetLoad(cfg.sc.TotalOrders(), res)
	}
	if errors.Is(err, context.Canceled) && !lostDatabase(context.Cause(ctx)) {
		run.Interrupted = true
		return verify.Inconclusive, e.summarize(pool, *ns, run)
	}
	if err != nil {
		return "", fmt.Errorf("fire orders: %w", err)
	}
	if lost, dropped := faults.Broken(); faults != nil && lost+dropped == 0 && res.Stats.Committed > 0 {
		log.Warn("--lose-commits cut no COMMIT: the connection may use TLS, which hides COMMIT; "+
			"add sslmode=disable to --dsn", "per_mille", cfg.loseCommits)
	}

	start = time.Now()
	settlements, err := eng.Settle(ctx)
	run.SetSettlement(settlements)
	if err != nil {
		return "", fmt.Errorf("settle: %w", err)
	}
	run.Durations.Settle = time.Since(start).Seconds()
	if err := eng.WriteHistory(ctx, res.Records); err != nil {
		return "", err
	}
	if err := schema.MarkFinished(ctx, pool, ns, time.Now()); err != nil {
		return "", err
	}
	return audit(ctx, pool, *ns, cfg.sc, res, snapshots, run)
}

// load fires the orders while a monitor takes snapshots of the books.
func (e *env) load(ctx context.Context, cfg *runConfig, eng *engine.Engine, pool *pgxpool.Pool,
	ns schema.Namespace, log *slog.Logger) (*engine.LoadResult, []verify.Snapshot, error) {
	log.Info("firing orders", "orders", cfg.sc.TotalOrders(), "concurrency", cfg.sc.Concurrency)
	opts := engine.LoadOptions{}
	if cfg.progress {
		opts.Progress = report.NewProgress(e.stderr).Print
	}
	monitor := verify.StartMonitor(ctx, pool, ns, time.Second, log)
	res, err := eng.Load(ctx, opts)
	// The last snapshot runs even when the run was stopped, but not for long: the
	// database may be what stopped it.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lastSnapshotTimeout)
	defer cancel()
	snapshots := monitor.Stop(stopCtx)
	return res, snapshots, err
}

// openOrderPool returns the pool for the orders' transactions: the run's pool, or with
// --lose-commits a pool of its own whose connections break at COMMIT, with its faults.
func openOrderPool(ctx context.Context, cfg *runConfig, t target.Target,
	pool *pgxpool.Pool) (*pgxpool.Pool, *target.CommitFaults, error) {
	if cfg.loseCommits == 0 {
		return pool, nil, nil
	}
	config, err := poolConfig(t, cfg.sc.Concurrency+4)
	if err != nil {
		return nil, nil, err
	}
	faults := &target.CommitFaults{PerMille: cfg.loseCommits, Seed: cfg.sc.Seed}
	faults.Apply(config)
	orderPool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", t.Describe(), err)
	}
	return orderPool, faults, nil
}

// audit runs the checks on the database and on the client's own record, and fills the
// proof block.
func audit(ctx context.Context, pool *pgxpool.Pool, ns schema.Namespace, sc *scenario.Scenario,
	res *engine.LoadResult, snapshots []verify.Snapshot, run *report.Run) (verify.Verdict, error) {
	start := time.Now()
	verify.Analyze(ctx, pool, ns)
	deposits := sc.TotalDeposits()
	results, err := verify.Audit(ctx, pool, ns, verify.Expect{Phase: verify.Final, Deposits: &deposits})
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	s := res.Stats
	results = append(results,
		verify.MidRunResult(snapshots),
		verify.Contention(sc.ExpectContention, verify.ContentionFigures{Retries: s.Retries(),
			GaveUp: s.GaveUp, UnfundedFills: s.UnfundedFills, Overlapped: s.Overlapped}),
		verify.Outcomes(s.Fired, s.Failed, s.Unknown, s.Errors))
	summary, err := verify.Summarize(ctx, pool, ns)
	if err != nil {
		return "", fmt.Errorf("audit: %w", err)
	}
	run.Durations.Audit = time.Since(start).Seconds()
	run.SetSummary(summary)
	run.Checks = results
	run.Verdict = verify.Overall(results)
	return run.Verdict, nil
}

// summarize fills the proof block of an interrupted run, outside the cancelled context.
func (e *env) summarize(pool *pgxpool.Pool, ns schema.Namespace, run *report.Run) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	summary, err := verify.Summarize(ctx, pool, ns)
	if err != nil {
		return err
	}
	run.SetSummary(summary)
	run.Verdict = verify.Inconclusive
	return nil
}

func (e *env) writeReport(cfg *runConfig, run *report.Run) error {
	if err := report.WriteText(e.stdout, run, report.Style{Color: cfg.color}); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if cfg.jsonPath != "" {
		if err := report.WriteJSONFile(cfg.jsonPath, run); err != nil {
			return err
		}
	}
	return nil
}
