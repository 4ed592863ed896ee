package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mattn/go-isatty"

	"parity/engine"
	"parity/scenario"
	"parity/schema"
)

// runConfig is the run command's validated configuration.
type runConfig struct {
	sc      *scenario.Scenario
	variant schema.Variant

	target targetFlags
	keepDB bool
	keep   bool

	jsonPath string
	progress bool
	color    bool
	logLevel string

	// sabotage names the deliberate engine defect, empty for the correct engine, and
	// faults is that defect. loseCommits breaks that many COMMITs in a thousand.
	sabotage    string
	faults      engine.Faults
	loseCommits int
}

// runFlags are the run command's flags before validation.
type runFlags struct {
	scenario, file           string
	target                   targetFlags
	keepDB, keep             bool
	jsonPath, logLevel       string
	seed                     uint64
	concurrency, maxAttempts int
	isolation, schemaName    string
	progress, color          choice
	sabotage                 string
	loseCommits              int
}

func newRunFlags(e *env) (*flag.FlagSet, *runFlags) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := &runFlags{
		progress: choice{"auto", []string{"auto", "always", "never"}},
		color:    choice{"auto", []string{"auto", "always", "never"}},
		target:   targetFlags{throwaway: true},
	}
	fs.StringVar(&f.scenario, "scenario", "proof", "`name` of the scenario to run (see 'parity scenarios')")
	fs.StringVar(&f.file, "file", "", "scenario `file` to use instead of the built-in scenarios.yaml")
	f.target.register(fs)
	fs.BoolVar(&f.keepDB, "keep-db", false, "leave the throwaway server running, with the run's namespace, and print how to connect")
	fs.BoolVar(&f.keep, "keep", false, "keep the run's namespace in the database instead of dropping it")
	fs.StringVar(&f.jsonPath, "json", "", "write the verdict as JSON to `file`")
	fs.Uint64Var(&f.seed, "seed", 0, "override the scenario's `seed`")
	fs.IntVar(&f.concurrency, "concurrency", 0, "override the scenario's concurrency: `orders` in flight at once")
	fs.IntVar(&f.maxAttempts, "max-attempts", 0, "override the scenario's retry.max_attempts: `attempts` per transaction, the first included")
	fs.StringVar(&f.isolation, "isolation", "", "override the scenario's isolation `level`: repeatable-read, serializable or read-committed")
	fs.StringVar(&f.schemaName, "schema", "", "override the scenario's schema `variant`: "+joinNames(schema.Names()))
	fs.Var(&f.progress, "progress", "per-second progress lines on stderr: auto (when stderr is a terminal), always or never")
	fs.Var(&f.color, "color", "colour in the report: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level` on stderr: debug, info, warn or error")
	fs.StringVar(&f.sabotage, "sabotage", "", "run a deliberately broken engine to watch the audit catch it: `kind` is "+
		joinNames(engine.SabotageKinds()))
	fs.IntVar(&f.loseCommits, "lose-commits", 0, "cut the connection at COMMIT for this many `per-mille` of orders, "+
		"losing the reply or the COMMIT itself (default 100 with --sabotage blind-retry)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: parity run [flags]\n\n"+
			"Runs a scenario against a throwaway PostgreSQL (or --dsn, or --dsql-endpoint),\n"+
			"settles its markets, audits the books and prints the proof.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs, f
}

func (e *env) run(ctx context.Context, args []string) (int, error) {
	fs, f := newRunFlags(e)
	if err := e.parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	cfg, err := e.runConfig(fs, f)
	if err != nil {
		return exitUsage, err
	}
	return e.execute(ctx, cfg)
}

// runConfig validates the flags, loads the scenario and applies the overrides.
func (e *env) runConfig(fs *flag.FlagSet, f *runFlags) (*runConfig, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	file, err := loadScenarios(f.file)
	if err != nil {
		return nil, err
	}
	sc, err := file.Lookup(f.scenario)
	if err != nil {
		if !set["scenario"] {
			err = fmt.Errorf("%w; choose one with --scenario NAME", err)
		}
		return nil, err
	}
	copied := *sc
	sc = &copied
	if err := applyOverrides(sc, f, set); err != nil {
		return nil, err
	}
	// More workers than orders would only hold idle connections.
	sc.Concurrency = int(min(int64(sc.Concurrency), sc.TotalOrders()))
	variant, err := schema.Lookup(sc.Schema)
	if err != nil {
		return nil, err
	}

	cfg := &runConfig{
		sc: sc, variant: variant, target: f.target,
		keepDB: f.keepDB, keep: f.keep || f.keepDB,
		jsonPath: f.jsonPath, logLevel: f.logLevel,
	}
	if err := cfg.target.check(fs, e.getenv); err != nil {
		return nil, err
	}
	if err := checkKeep(cfg, set); err != nil {
		return nil, err
	}
	if err := checkSabotage(cfg, f, set); err != nil {
		return nil, err
	}
	if err := checkJSONPath(cfg.jsonPath); err != nil {
		return nil, err
	}
	if f.file != "" && sameFile(f.file, cfg.jsonPath) {
		return nil, usageErrorf("--json %q is the scenario file given with --file: give another "+
			"file for the verdict", cfg.jsonPath)
	}
	cfg.progress = decide(f.progress.value, isTerminal(os.Stderr))
	cfg.color = decide(f.color.value, isTerminal(os.Stdout) && e.getenv("NO_COLOR") == "")
	return cfg, nil
}

func applyOverrides(sc *scenario.Scenario, f *runFlags, set map[string]bool) error {
	if set["seed"] {
		sc.Seed = f.seed
	}
	if set["concurrency"] {
		if f.concurrency < 1 || f.concurrency > 100000 {
			return usageErrorf("invalid --concurrency %d: use 1 to 100000", f.concurrency)
		}
		sc.Concurrency = f.concurrency
	}
	if set["max-attempts"] {
		if f.maxAttempts < 1 || f.maxAttempts > 1000 {
			return usageErrorf("invalid --max-attempts %d: use 1 to 1000 (1 means never retry)", f.maxAttempts)
		}
		sc.Retry.MaxAttempts = f.maxAttempts
	}
	if set["isolation"] {
		switch f.isolation {
		case scenario.RepeatableRead, scenario.Serializable, scenario.ReadCommitted:
			sc.Isolation = f.isolation
		default:
			return usageErrorf("invalid --isolation %q: use %s, %s or %s", f.isolation,
				scenario.RepeatableRead, scenario.Serializable, scenario.ReadCommitted)
		}
	}
	if set["schema"] {
		if _, err := schema.Lookup(f.schemaName); err != nil {
			return usageErrorf("invalid --schema: %v", err)
		}
		sc.Schema = f.schemaName
	}
	return nil
}

// checkKeep validates --keep and --keep-db against the target, and the isolation level
// against DSQL's.
func checkKeep(cfg *runConfig, set map[string]bool) error {
	if set["keep"] && !cfg.keepDB && !cfg.target.given() {
		return usageErrorf("--keep keeps the run's namespace, but the throwaway server is removed " +
			"at exit: use --keep-db to keep the server and its namespace")
	}
	if cfg.keepDB && cfg.target.given() {
		return usageErrorf("--keep-db keeps a throwaway server, but the run uses an existing one: " +
			"use --keep to keep the run's namespace there")
	}
	if cfg.target.dsqlEndpoint != "" && cfg.sc.Isolation != scenario.RepeatableRead {
		return usageErrorf("isolation %s is not available on Aurora DSQL, which runs every "+
			"transaction at repeatable-read: use --isolation repeatable-read", cfg.sc.Isolation)
	}
	return nil
}

// checkJSONPath makes sure the JSON verdict can be written before the run starts, so that
// a long run does not end with nowhere to put its result. The verdict replaces path by a
// rename, so path must be a regular file or not exist yet: a rename would replace a device,
// a FIFO or a symbolic link itself rather than write through it.
func checkJSONPath(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return usageErrorf("invalid --json %q: directory %s does not exist", path, dir)
	}
	if info, err := os.Lstat(path); err == nil && !info.Mode().IsRegular() {
		return usageErrorf("invalid --json %q: it exists and is not a regular file; give a new "+
			"file name or a regular file to replace", path)
	}
	probe, err := os.CreateTemp(dir, ".parity-probe-*")
	if err != nil {
		return usageErrorf("invalid --json %q: cannot write to %s: %v", path, dir, errors.Unwrap(err))
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// checkSabotage validates --sabotage and --lose-commits.
func checkSabotage(cfg *runConfig, f *runFlags, set map[string]bool) error {
	if set["sabotage"] {
		faults, err := engine.Sabotage(f.sabotage)
		if err != nil {
			return usageErrorf("invalid --sabotage: %v", err)
		}
		cfg.sabotage, cfg.faults = f.sabotage, faults
	}
	if cfg.faults.LostUpdate {
		if set["isolation"] && cfg.sc.Isolation != scenario.ReadCommitted {
			return usageErrorf("--sabotage lost-update runs at read-committed, where nothing "+
				"stops a lost update: drop --isolation %s", cfg.sc.Isolation)
		}
		cfg.sc.Isolation = scenario.ReadCommitted
	}
	cfg.loseCommits = f.loseCommits
	if cfg.faults.BlindRetry && !set["lose-commits"] {
		cfg.loseCommits = 100
	}
	if cfg.loseCommits < 0 || cfg.loseCommits > 1000 {
		return usageErrorf("invalid --lose-commits %d: use 0 to 1000 (per mille of COMMITs)", cfg.loseCommits)
	}
	if cfg.loseCommits > 0 && cfg.target.dsqlEndpoint != "" {
		return usageErrorf("--lose-commits needs a plain connection to read COMMIT on the wire, " +
			"but DSQL connections use TLS: use it with a throwaway server or --dsn")
	}
	if cfg.faults.BlindRetry && cfg.loseCommits == 0 {
		return usageErrorf("--sabotage blind-retry needs lost commits to resend blindly: drop --lose-commits 0")
	}
	return nil
}

// sameFile reports whether the paths name one existing file.
func sameFile(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}

func decide(mode string, auto bool) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return auto
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	out := names[0]
	for _, n := range names[1 : len(names)-1] {
		out += ", " + n
	}
	return out + " or " + names[len(names)-1]
}
