package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"parity/engine"
	"parity/scenario"
	"parity/schema"
	"parity/target"
)

// Exit codes.
const (
	exitConsistent   = 0
	exitInconsistent = 1
	exitUsage        = 2
	exitInfra        = 3
	exitInconclusive = 4
	exitInterrupted  = 130
)

//go:embed scenarios.yaml
var embeddedScenarios []byte

// embeddedSource names the embedded scenario file in messages.
const embeddedSource = "scenarios.yaml (built in)"

const usage = `Parity proves that a ledger stays exact under concurrent, conflicting orders.

Usage:
  parity run [flags]        run a scenario and audit the books (default scenario: proof)
  parity serve [flags]      serve the live proof as JSON at http://127.0.0.1:8080/api/proof
  parity proof [flags]      print the proof of a kept namespace as JSON
  parity verify [flags]     audit a kept namespace again and explain any failure
  parity scenarios [flags]  list the scenarios
  parity help [command]     show help

Run 'parity help COMMAND' for a command's flags.

Exit codes: 0 consistent, 1 inconsistent, 2 invalid usage or scenario,
3 infrastructure failure, 4 inconclusive, 130 interrupted.
`

// errUsage marks errors in the command line; they exit with code 2.
var errUsage = errors.New("invalid usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// env holds the output streams and the environment that a command uses.
type env struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// Main runs the command line args and returns the exit code. It is main without the
// process: tests call it directly.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var code int
	var err error
	switch args[0] {
	case "run":
		code, err = e.run(ctx, args[1:])
	case "serve":
		code, err = e.serve(ctx, args[1:])
	case "proof":
		code, err = e.proof(ctx, args[1:])
	case "verify":
		code, err = e.verify(ctx, args[1:])
	case "scenarios":
		code, err = e.scenarios(args[1:])
	case "help", "-h", "-help", "--help":
		code, err = e.help(args[1:])
	default:
		err = usageErrorf("unknown command %q: use run, serve, proof, verify or scenarios, "+
			"or see 'parity help'", args[0])
	}
	if err != nil {
		return e.fail(err)
	}
	return code
}

// fail prints err and returns its exit code.
func (e *env) fail(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitConsistent
	}
	fmt.Fprintf(e.stderr, "parity: %v\n", err)
	switch {
	case errors.Is(err, errUsage), errors.Is(err, scenario.ErrInvalid),
		errors.Is(err, scenario.ErrNotFound), errors.Is(err, schema.ErrUnknownVariant),
		errors.Is(err, target.ErrInvalidOptions):
		return exitUsage
	case errors.Is(err, errServerLost), errors.Is(err, errDatabaseLost),
		errors.Is(err, engine.ErrConnectionLost):
		return exitInfra
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(e.stderr, "parity: interrupted; the run's server and namespace were cleaned up unless kept")
		return exitInterrupted
	}
	return exitInfra
}

func (e *env) help(args []string) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(e.stdout, usage)
		return exitConsistent, nil
	}
	var fs *flag.FlagSet
	switch args[0] {
	case "run":
		fs, _ = newRunFlags(e)
	case "serve":
		fs, _ = newServeFlags(e)
	case "proof", "verify":
		fs, _ = newProofFlags(e, args[0])
	case "scenarios":
		fs, _ = newScenariosFlags(e)
	default:
		return exitUsage, usageErrorf("unknown command %q: use run, serve, proof, verify or scenarios", args[0])
	}
	fs.SetOutput(e.stdout)
	fs.Usage()
	return exitConsistent, nil
}

// parseFlags parses args into fs and rejects stray arguments. On -h it prints the
// command's help to stdout.
func (e *env) parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return err
		}
		return usageErrorf("%v (see 'parity help %s')", err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q: %s takes flags only (see 'parity help %s')",
			fs.Arg(0), fs.Name(), fs.Name())
	}
	return nil
}

// loadScenarios parses the scenario file at path, or the embedded one when path is empty.
func loadScenarios(path string) (*scenario.File, error) {
	data, source := embeddedScenarios, embeddedSource
	if path != "" {
		var err error
		if data, err = readScenarioFile(path); err != nil {
			return nil, err
		}
		source = path
	}
	return scenario.Parse(data, source, scenario.Options{Schemas: schema.Names()})
}

// readScenarioFile reads a scenario file. It rejects what is not a regular file, such as a
// FIFO that would block or a device that never ends, and stops reading past the largest
// file Parse accepts.
func readScenarioFile(path string) ([]byte, error) {
	// Stat before Open: opening a FIFO blocks until someone writes to it.
	info, err := os.Stat(path)
	if err != nil {
		return nil, usageErrorf("read scenario file: %v", err)
	}
	if !info.Mode().IsRegular() {
		return nil, usageErrorf("read scenario file %s: not a regular file; give a YAML file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("read scenario file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, scenario.MaxFileSize+1))
	if err != nil {
		return nil, usageErrorf("read scenario file: %v", err)
	}
	return data, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("invalid --log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// choice is a flag value restricted to a set of words.
type choice struct {
	value   string
	allowed []string
}

func (c *choice) String() string { return c.value }

func (c *choice) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", s, strings.Join(c.allowed, ", "))
}
