package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"parity/engine"
	"parity/scenario"
	"parity/schema"
	"parity/target"
	"parity/verify"
)

const (
	defaultServeAddr = "127.0.0.1:8080"
	defaultServeRate = 20
	maxServeRate     = 100000

	// proofTimeout bounds the computation of one proof, so that a stuck query cannot hold a
	// request and its connection forever.
	proofTimeout = 30 * time.Second
	// shutdownTimeout is how long a stopping server waits for requests in flight before it
	// closes their connections.
	shutdownTimeout = 10 * time.Second
	// proofConns is the pool's headroom beyond the load's workers, for proof requests.
	proofConns = 8
)

// serveFlags are the serve command's flags before validation.
type serveFlags struct {
	addr      string
	target    targetFlags
	namespace string
	scenario  string
	file      string
	rate      int
	keep      bool
	logLevel  string
}

func newServeFlags(e *env) (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f := &serveFlags{target: targetFlags{throwaway: true}}
	fs.StringVar(&f.addr, "addr", defaultServeAddr, "loopback `address` to listen on: 127.0.0.1:PORT, [::1]:PORT or localhost:PORT; port 0 picks a free port")
	f.target.register(fs)
	fs.StringVar(&f.namespace, "namespace", "", "serve the proof of this kept `namespace` (parity_...) without a load; needs --dsn or --dsql-endpoint")
	fs.StringVar(&f.scenario, "scenario", "proof", "`name` of the scenario whose orders the background load fires (see 'parity scenarios')")
	fs.StringVar(&f.file, "file", "", "scenario `file` to use instead of the built-in scenarios.yaml")
	fs.IntVar(&f.rate, "rate", defaultServeRate, "background load `rate` in orders per second")
	fs.BoolVar(&f.keep, "keep", false, "keep the load's namespace in the database instead of dropping it on exit")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level` on stderr: debug (adds every request), info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: parity serve [flags]\n\n"+
			"Serves GET /api/proof: the proof of a namespace as JSON, computed from the database\n"+
			"on every request. Without --namespace it creates a namespace, funds it and fires\n"+
			"the scenario's orders at --rate in the background, so the proof is live.\n"+
			"Ctrl-C stops the server and the load and drops the namespace unless --keep.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, f
}

// serveConfig is the serve command's validated configuration.
type serveConfig struct {
	addr   string
	target *targetFlags
	// namespace is the kept namespace to serve; empty means create one and load it.
	namespace string
	// sc is the load's scenario with the rate and workers applied; nil with namespace.
	sc      *scenario.Scenario
	variant schema.Variant
	keep    bool
	log     *slog.Logger
}

func (e *env) serve(ctx context.Context, args []string) (int, error) {
	fs, f := newServeFlags(e)
	if err := e.parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	cfg, err := e.serveConfig(fs, f)
	if err != nil {
		return exitUsage, err
	}
	// Listening first makes a taken port fail before any database work, and makes the
	// actual port of --addr 127.0.0.1:0 known.
	ln, err := listenLoopback(cfg.addr)
	if err != nil {
		return exitInfra, err
	}
	defer ln.Close()
	return e.serveProof(ctx, cfg, ln)
}

// serveConfig validates the flags and, for a load, loads the scenario.
func (e *env) serveConfig(fs *flag.FlagSet, f *serveFlags) (*serveConfig, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	if err := checkLoopback(f.addr); err != nil {
		return nil, err
	}
	log, err := newLogger(e.stderr, f.logLevel)
	if err != nil {
		return nil, err
	}
	cfg := &serveConfig{
		addr: f.addr, target: &f.target, namespace: f.namespace, keep: f.keep, log: log,
	}
	if err := cfg.target.check(fs, e.getenv); err != nil {
		return nil, err
	}
	if set["namespace"] {
		return cfg, checkServeNamespace(cfg, set)
	}
	if f.keep && !cfg.target.given() {
		return nil, usageErrorf("--keep keeps the load's namespace, but the throwaway server " +
			"that would contain it is removed on exit: pass --dsn URL or --dsql-endpoint HOST")
	}
	if f.rate < 1 || f.rate > maxServeRate {
		return nil, usageErrorf("invalid --rate %d: use 1 to %d orders per second",
			f.rate, maxServeRate)
	}
	if cfg.sc, cfg.variant, err = loadServeScenario(f); err != nil {
		return nil, err
	}
	if cfg.target.dsqlEndpoint != "" && cfg.sc.Isolation != scenario.RepeatableRead {
		return nil, usageErrorf("scenario %s runs at %s, which Aurora DSQL does not offer: "+
			"choose a repeatable-read scenario", cfg.sc.Name, cfg.sc.Isolation)
	}
	return cfg, nil
}

func checkServeNamespace(cfg *serveConfig, set map[string]bool) error {
	for _, name := range []string{"scenario", "file", "rate", "keep"} {
		if set[name] {
			return usageErrorf("--%s applies to the background load, but --namespace serves a "+
				"kept namespace without one: drop --%s or --namespace", name, name)
		}
	}
	if err := schema.ValidateName(cfg.namespace); err != nil {
		return usageErrorf("--namespace: %v", err)
	}
	if !cfg.target.given() {
		return usageErrorf("--namespace %s needs the server that contains it: pass --dsn URL "+
			"or --dsql-endpoint HOST, because a throwaway server starts empty", cfg.namespace)
	}
	return nil
}

// loadServeScenario returns a copy of the named scenario that fires at f.rate orders per
// second. At that rate, f.rate workers keep pace while an order takes under a second, so
// the load uses no more workers than that, because more would only hold idle connections.
func loadServeScenario(f *serveFlags) (*scenario.Scenario, schema.Variant, error) {
	file, err := loadScenarios(f.file)
	if err != nil {
		return nil, schema.Variant{}, err
	}
	sc, err := file.Lookup(f.scenario)
	if err != nil {
		return nil, schema.Variant{}, err
	}
	copied := *sc
	copied.Rate = f.rate
	copied.Concurrency = min(copied.Concurrency, f.rate)
	variant, err := schema.Lookup(copied.Schema)
	if err != nil {
		return nil, schema.Variant{}, err
	}
	return &copied, variant, nil
}

// checkLoopback rejects an --addr whose host is not a loopback address, because the proof
// endpoint has no authentication and Parity serves nothing beyond the machine.
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("invalid --addr %q: %v; use host:port, such as %s",
			addr, err, defaultServeAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usageErrorf("invalid --addr %q: port %q is not a number from 0 to 65535", addr, port)
	}
	const why = "parity serve listens only on loopback (127.0.0.0/8, ::1 or localhost), " +
		"because /api/proof has no authentication"
	if host == "" {
		return usageErrorf("invalid --addr %q: an empty host listens on every interface; %s", addr, why)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return usageErrorf("invalid --addr %q: %s is not a loopback address; %s", addr, host, why)
	}
	return nil
}

// listenLoopback listens on addr, which checkLoopback accepted, and checks the address
// actually bound, since localhost resolves through the system's resolver.
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w (pass another --addr, or 127.0.0.1:0 for any free port)", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, usageErrorf("invalid --addr %q: it resolved to %s, which is not a loopback "+
			"address; use 127.0.0.1 or [::1]", addr, ln.Addr())
	}
	return ln, nil
}

// serveProof opens the database, prepares the namespace to prove and serves its proof on
// ln until ctx ends. Then it stops the load, drops the namespace it created unless kept,
// and closes the target.
func (e *env) serveProof(ctx context.Context, cfg *serveConfig, ln net.Listener) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	log := cfg.log

	workers := 0
	if cfg.sc != nil {
		workers = cfg.sc.Concurrency
	}
	// A throwaway server gets 20 connections beyond the pool for psql and the like.
	tgt, err := cfg.target.open(ctx, target.LocalOptions{
		MaxConnections: workers + proofConns + 20,
		Logger:         log,
	})
	if err != nil {
		return exitInfra, err
	}
	defer releaseTarget(tgt, log)
	cancelOnServerExit(ctx, tgt, cancel)

	pool, err := openPool(ctx, tgt, workers+proofConns)
	if err != nil {
		return exitInfra, runError(ctx, err)
	}
	defer pool.Close()

	if cfg.namespace != "" {
		ns, err := openKeptNamespace(ctx, pool, cfg.namespace)
		if err != nil {
			return exitInfra, err
		}
		prover := &prover{pool: pool, ns: ns, backend: tgt.Kind().String(), detect: true, log: log}
		return exitConsistent, e.runServer(ctx, ln, prover)
	}
	return e.serveLoad(ctx, cfg, tgt, pool, ln)
}

// serveLoad creates and funds a namespace, fires the scenario's orders into it in the
// background and serves its live proof until ctx ends.
func (e *env) serveLoad(ctx context.Context, cfg *serveConfig, tgt target.Target,
	pool *pgxpool.Pool, ln net.Listener) (int, error) {
	log := cfg.log
	ns, err := createServeNamespace(ctx, pool, tgt, cfg)
	if err != nil {
		return exitInfra, runError(ctx, err)
	}
	if cfg.keep {
		defer fmt.Fprintf(e.stdout, "Kept namespace %s: 'parity proof --namespace %s' "+
			"with the same target prints its proof.\n", ns.Name, ns.Name)
	} else {
		defer dropNamespace(pool, ns.Name, log)
	}

	load, err := startLoad(ctx, pool, ns, cfg.sc, log)
	if err != nil {
		return exitInfra, runError(ctx, fmt.Errorf("start load: %w", err))
	}
	defer load.stop()

	deposits := cfg.sc.TotalDeposits()
	p := &prover{pool: pool, ns: ns, backend: tgt.Kind().String(), deposits: &deposits, log: log}
	if err := e.runServer(ctx, ln, p); err != nil {
		return exitInfra, err
	}
	if err := load.stop(); err != nil {
		return exitInfra, fmt.Errorf("background load: %w", err)
	}
	return exitConsistent, nil
}

// cancelOnServerExit cancels ctx with errServerLost when a throwaway server exits before
// ctx ends.
func cancelOnServerExit(ctx context.Context, t target.Target, cancel context.CancelCauseFunc) {
	local, ok := t.(*target.Local)
	if !ok {
		return
	}
	go func() {
		select {
		case <-local.Done():
			cancel(errServerLost)
		case <-ctx.Done():
		}
	}()
}

// openKeptNamespace opens an existing namespace; a missing or foreign one is a usage error.
func openKeptNamespace(ctx context.Context, pool *pgxpool.Pool,
	name string) (schema.Namespace, error) {
	ns, err := schema.Open(ctx, pool, name)
	switch {
	case errors.Is(err, schema.ErrNotFound):
		return ns, usageErrorf("namespace %s not found in the database: check the name, "+
			"which 'parity run --keep' prints, and the target", name)
	case errors.Is(err, schema.ErrNotOurs):
		return ns, usageErrorf("%v: Parity reads only namespaces it created", err)
	case err != nil:
		return ns, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return ns, nil
}

func createServeNamespace(ctx context.Context, pool *pgxpool.Pool, tgt target.Target,
	cfg *serveConfig) (schema.Namespace, error) {
	dialect := schema.PostgreSQL
	if tgt.Kind() == target.DSQL {
		dialect = schema.DSQL
	}
	meta := schema.Meta{
		Scenario: cfg.sc.Name, Seed: cfg.sc.Seed, Isolation: cfg.sc.Isolation, CreatedAt: time.Now(),
	}
	ns, err := schema.Create(ctx, pool, dialect, cfg.variant, schema.NewName(time.Now()), meta)
	if err != nil {
		return ns, fmt.Errorf("create namespace: %w", err)
	}
	cfg.log.Info("namespace created", "namespace", ns.Name, "schema", cfg.variant.Name)
	return ns, nil
}

// backgroundLoad is a load firing a scenario's orders on its own goroutine.
type backgroundLoad struct {
	cancel   context.CancelFunc
	done     chan struct{} // closed when the load returns
	err      error         // the load's error, other than its cancellation; set before done closes
	stopOnce sync.Once
}

// startLoad funds the namespace and starts firing the scenario's orders. The load stops
// firing when the stream ends or when ctx ends or stop is called.
func startLoad(ctx context.Context, pool *pgxpool.Pool, ns schema.Namespace,
	sc *scenario.Scenario, log *slog.Logger) (*backgroundLoad, error) {
	eng, err := engine.New(pool, ns, sc, engine.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := eng.Setup(ctx); err != nil {
		return nil, err
	}
	loadCtx, cancel := context.WithCancel(ctx)
	l := &backgroundLoad{cancel: cancel, done: make(chan struct{})}
	log.Info("firing orders in the background", "orders", sc.TotalOrders(), "rate", sc.Rate,
		"workers", sc.Concurrency)
	go func() {
		defer close(l.done)
		res, err := eng.Load(loadCtx, engine.LoadOptions{})
		l.err = loadResult(res, err, sc.TotalOrders(), log)
	}()
	return l, nil
}

// loadResult logs how a load ended and returns its error, or nil when it ended with the
// stream or was stopped.
func loadResult(res *engine.LoadResult, err error, total int64, log *slog.Logger) error {
	var fired, committed, trades int64
	if res != nil {
		fired, committed, trades = res.Stats.Fired, res.Stats.Committed, res.Stats.Trades
	}
	switch {
	case err == nil:
		log.Info("order stream ended; still serving", "fired", fired, "committed", committed,
			"trades", trades)
		return nil
	case errors.Is(err, context.Canceled):
		log.Info("load stopped", "fired", fired, "orders", total, "committed", committed,
			"trades", trades)
		return nil
	}
	log.Error("load failed; still serving", "fired", fired, "orders", total, "err", err)
	return err
}

// stop stops firing, waits for the orders in flight and returns the load's error. It is
// safe to call more than once.
func (l *backgroundLoad) stop() error {
	l.stopOnce.Do(func() {
		l.cancel()
		<-l.done
	})
	return l.err
}

// runServer serves p on ln until ctx ends, then shuts the server down. It returns nil after
// a clean stop, and the cause when a lost throwaway server ended ctx.
func (e *env) runServer(ctx context.Context, ln net.Listener, p *prover) error {
	srv := &http.Server{
		Handler:           logRequests(p.log, p.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelError),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	p.log.Info("listening", "url", url, "namespace", p.ns.Name)
	fmt.Fprintf(e.stdout, "Serving the proof of %s at %s/api/proof (Ctrl-C stops)\n", p.ns.Name, url)

	select {
	case err := <-served:
		return fmt.Errorf("serve HTTP: %w", err)
	case <-ctx.Done():
	}
	p.log.Info("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		p.log.Warn("requests still running at shutdown; closing their connections", "err", err)
		srv.Close()
	}
	<-served
	if cause := context.Cause(ctx); errors.Is(cause, errServerLost) {
		return cause
	}
	return nil
}

// prover computes a namespace's proof for HTTP requests.
type prover struct {
	pool    *pgxpool.Pool
	ns      schema.Namespace
	backend string
	// detect makes every request look up the phase of a kept namespace. Without it, the
	// phase is Live.
	detect bool
	// deposits is the client's total deposit in cents, nil when unknown.
	deposits *int64
	log      *slog.Logger
}

func (p *prover) routes() http.Handler {
	mux := http.NewServeMux()
	// A GET pattern also serves HEAD. ServeMux returns 405 with an Allow header for other
	// methods on these paths, and 404 for unknown paths.
	mux.HandleFunc("GET /{$}", p.handleIndex)
	mux.HandleFunc("GET /api/proof", p.handleProof)
	return mux
}

func (p *prover) handleIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Parity: GET /api/proof returns the proof of namespace %s as JSON.\n", p.ns.Name)
}

func (p *prover) handleProof(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), proofTimeout)
	defer cancel()
	proof, err := p.compute(ctx)
	if err != nil {
		if r.Context().Err() == nil {
			p.log.Error("compute proof", "namespace", p.ns.Name, "err", err)
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()}, p.log)
		return
	}
	writeJSON(w, http.StatusOK, proof, p.log)
}

func (p *prover) compute(ctx context.Context) (*verify.Proof, error) {
	exp := verify.Expect{Phase: verify.Live, Deposits: p.deposits}
	if p.detect {
		phase, err := verify.DetectPhase(ctx, p.pool, p.ns)
		if err != nil {
			return nil, err
		}
		exp.Phase = phase
	}
	return verify.ComputeProof(ctx, p.pool, p.ns, p.backend, exp)
}

func writeJSON(w http.ResponseWriter, status int, v any, log *slog.Logger) {
	body, err := json.Marshal(v)
	if err != nil {
		log.Error("encode JSON response", "err", err)
		http.Error(w, "encode JSON response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if _, err := w.Write(append(body, '\n')); err != nil {
		log.Debug("write response", "err", err)
	}
}

// statusRecorder records the status code a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// logRequests logs every request at debug level.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}
