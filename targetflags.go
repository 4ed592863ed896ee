package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"parity/target"
)

// targetFlags are the flags that choose the database a command works on. It is an existing
// PostgreSQL server (--dsn, default $PARITY_DSN) or an Aurora DSQL cluster (--dsql-endpoint
// with --region and --dsql-user). When neither is given, a command that allows it starts a
// throwaway server.
type targetFlags struct {
	dsn          string
	dsqlEndpoint string
	region       string
	dsqlUser     string

	// throwaway allows a throwaway server when no target is given. Without it, check
	// rejects a missing target with noTarget as the fix.
	throwaway bool
	noTarget  string

	// Set by check.
	dsnSource string      // "--dsn" or "PARITY_DSN", for messages
	parsedDSN *target.DSN // nil unless a DSN was given
}

// register adds the target flags to fs.
func (t *targetFlags) register(fs *flag.FlagSet) {
	dsnHelp := "`URL` of an existing PostgreSQL server (default $PARITY_DSN)"
	if t.throwaway {
		dsnHelp = "`URL` of an existing PostgreSQL server (default $PARITY_DSN; " +
			"empty starts a throwaway server)"
	}
	fs.StringVar(&t.dsn, "dsn", "", dsnHelp)
	fs.StringVar(&t.dsqlEndpoint, "dsql-endpoint", "", "Aurora DSQL cluster `endpoint`, reached with IAM authentication")
	fs.StringVar(&t.region, "region", "", "AWS `region` of the DSQL cluster (default: taken from the endpoint)")
	fs.StringVar(&t.dsqlUser, "dsql-user", "admin", "DSQL database `role`")
}

// check validates the parsed target flags, takes the DSN from $PARITY_DSN when no target
// flag is given and parses it, so that a bad target is a usage error before anything starts.
func (t *targetFlags) check(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["dsn"] && set["dsql-endpoint"] {
		return usageErrorf("--dsn and --dsql-endpoint both given: choose one target")
	}
	if t.dsqlEndpoint == "" && (set["region"] || set["dsql-user"]) {
		return usageErrorf("--region and --dsql-user need --dsql-endpoint")
	}

	t.dsnSource = "--dsn"
	if !set["dsn"] && t.dsqlEndpoint == "" {
		t.dsn, t.dsnSource = getenv("PARITY_DSN"), "PARITY_DSN"
	}
	if t.dsn != "" {
		// ParseDSN's error never contains the password.
		d, err := target.ParseDSN(t.dsn)
		if err != nil {
			return usageErrorf("invalid %s: %v", t.dsnSource, err)
		}
		t.parsedDSN = d
	}
	if !t.given() && !t.throwaway {
		return usageErrorf("no database given: %s", t.noTarget)
	}
	return nil
}

// given reports whether the flags or $PARITY_DSN name an existing database. Call it after
// check.
func (t *targetFlags) given() bool {
	return t.parsedDSN != nil || t.dsqlEndpoint != ""
}

// open returns the target that check accepted, or starts a throwaway server with local
// when none was given. Every NewDSQL error is a usage error, because NewDSQL only
// validates the endpoint and region and loads the local AWS configuration.
func (t *targetFlags) open(ctx context.Context, local target.LocalOptions) (target.Target, error) {
	switch {
	case t.parsedDSN != nil:
		return t.parsedDSN, nil
	case t.dsqlEndpoint != "":
		c, err := target.NewDSQL(ctx, target.DSQLOptions{
			Endpoint: t.dsqlEndpoint, Region: t.region, User: t.dsqlUser,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: --dsql-endpoint %s: %w", errUsage, t.dsqlEndpoint, err)
		}
		return c, nil
	case !t.throwaway:
		return nil, usageErrorf("no database given: %s", t.noTarget)
	}
	if local.Logger != nil {
		local.Logger.Info("starting a throwaway PostgreSQL server")
	}
	l, err := target.StartLocal(ctx, local)
	if err != nil {
		return nil, fmt.Errorf("start throwaway PostgreSQL: %w", err)
	}
	return l, nil
}

// releaseTarget closes the target, which stops and removes a throwaway server, and logs a
// failure. It runs outside the command's context, which may have ended.
func releaseTarget(t target.Target, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := t.Close(ctx); err != nil {
		log.Error("close target", "target", t.Describe(), "err", err)
	}
}
