package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"parity/report"
	"parity/schema"
	"parity/target"
	"parity/verify"
)

// proofFlags are the flags of the proof and verify commands before validation.
type proofFlags struct {
	namespace string
	target    targetFlags
	jsonPath  string
	logLevel  string
	color     choice
}

// Usage texts of the two commands that audit a kept namespace.
const (
	proofUsage = "Usage: parity proof --namespace NAME [flags]\n\n" +
		"Prints the proof of a kept namespace as JSON, computed from the database: the\n" +
		"document that 'parity serve' returns at /api/proof. Exits 0 when consistent,\n" +
		"1 when inconsistent and 4 when inconclusive.\n\nFlags:\n"
	verifyUsage = "Usage: parity verify --namespace NAME [flags]\n\n" +
		"Audits a kept namespace again, for example after a crash or from another machine,\n" +
		"and prints every check with the witnesses of the failed ones. A finished run gets\n" +
		"every check; one that was stopped early is audited as live books. Exits 0 when\n" +
		"consistent, 1 when inconsistent and 4 when inconclusive.\n\nFlags:\n"
)

// newProofFlags returns the flags of the proof command, or of the verify command when
// name is "verify".
func newProofFlags(e *env, name string) (*flag.FlagSet, *proofFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &proofFlags{target: targetFlags{noTarget: "pass --dsn URL (or set PARITY_DSN) or " +
		"--dsql-endpoint HOST of the server that holds the namespace, because a throwaway " +
		"server would start empty; for a server kept by 'parity run --keep-db', pass the " +
		"connection string that it printed"},
		color: choice{"auto", []string{"auto", "always", "never"}}}
	fs.StringVar(&f.namespace, "namespace", "", "kept `namespace` (parity_...) to audit, as 'parity run --keep' prints it")
	f.target.register(fs)
	fs.StringVar(&f.jsonPath, "json", "", "also write the proof as JSON to `file`")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level` on stderr: debug, info, warn or error")
	text := proofUsage
	if name == "verify" {
		text = verifyUsage
		fs.Var(&f.color, "color", "colour in the report: auto (when stdout is a terminal and NO_COLOR is unset), always or never")
	}
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs, f
}

// proof prints the proof of a kept namespace once, as JSON.
func (e *env) proof(ctx context.Context, args []string) (int, error) {
	return e.auditKept(ctx, "proof", args)
}

// verify audits a kept namespace again and prints the checks for a person.
func (e *env) verify(ctx context.Context, args []string) (int, error) {
	return e.auditKept(ctx, "verify", args)
}

func (e *env) auditKept(ctx context.Context, name string, args []string) (int, error) {
	fs, f := newProofFlags(e, name)
	if err := e.parseFlags(fs, args); err != nil {
		return exitUsage, err
	}
	if err := checkProofFlags(fs, f, e.getenv); err != nil {
		return exitUsage, err
	}
	log, err := newLogger(e.stderr, f.logLevel)
	if err != nil {
		return exitUsage, err
	}

	tgt, err := f.target.open(ctx, target.LocalOptions{})
	if err != nil {
		return exitInfra, err
	}
	defer releaseTarget(tgt, log)
	pool, err := openPool(ctx, tgt, 2)
	if err != nil {
		return exitInfra, err
	}
	defer pool.Close()

	ns, err := openKeptNamespace(ctx, pool, f.namespace)
	if err != nil {
		return exitInfra, err
	}
	phase, err := verify.DetectPhase(ctx, pool, ns)
	if err != nil {
		return exitInfra, err
	}
	p, err := verify.ComputeProof(ctx, pool, ns, tgt.Kind().String(), verify.Expect{Phase: phase})
	if err != nil {
		return exitInfra, err
	}
	if name == "verify" {
		style := report.Style{Color: decide(f.color.value, isTerminal(os.Stdout) && e.getenv("NO_COLOR") == "")}
		err = report.WriteProofText(e.stdout, p, style)
		if err == nil && f.jsonPath != "" {
			err = report.WriteJSONFile(f.jsonPath, p)
		}
	} else {
		err = writeProof(e, p, f.jsonPath)
	}
	if err != nil {
		return exitInfra, err
	}
	return report.ExitCode(p.Verdict), nil
}

func checkProofFlags(fs *flag.FlagSet, f *proofFlags, getenv func(string) string) error {
	if f.namespace == "" {
		return usageErrorf("missing --namespace: name the kept namespace (parity_...) " +
			"that 'parity run --keep' printed")
	}
	if err := schema.ValidateName(f.namespace); err != nil {
		return usageErrorf("--namespace: %v", err)
	}
	if err := f.target.check(fs, getenv); err != nil {
		return err
	}
	return checkJSONPath(f.jsonPath)
}

func writeProof(e *env, p *verify.Proof, path string) error {
	if err := report.WriteJSON(e.stdout, p); err != nil {
		return err
	}
	if path == "" {
		return nil
	}
	return report.WriteJSONFile(path, p)
}
