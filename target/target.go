// Package target owns where a run executes: a throwaway PostgreSQL server that the harness
// starts and removes itself, an existing server given by a DSN, or an Amazon Aurora DSQL
// cluster reached with IAM authentication tokens.
//
// Every target hands out fresh pgxpool configurations through PoolConfig, so the caller decides
// how many pools to open and how large each one is. Describe is safe to print: it never contains
// a password or a token.
package target

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Kind is the kind of database a target runs, which decides the SQL dialect and the retry rules.
// The zero value is not a valid kind.
type Kind int

// The kinds of database a target can run.
const (
	PostgreSQL Kind = iota + 1
	DSQL
)

// String returns the kind's name as the command line and the JSON verdict spell it.
func (k Kind) String() string {
	switch k {
	case PostgreSQL:
		return "postgresql"
	case DSQL:
		return "dsql"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Target is a place where a run executes.
type Target interface {
	// Kind returns the kind of database the target runs.
	Kind() Kind
	// PoolConfig returns a fresh pgxpool config for at most maxConns connections.
	PoolConfig(maxConns int) (*pgxpool.Config, error)
	// Describe returns a one-line description that never contains a password or token.
	Describe() string
	// Close releases the target. A throwaway server is stopped and its directory removed,
	// unless kept.
	Close(ctx context.Context) error
}

var (
	_ Target = (*Local)(nil)
	_ Target = (*DSN)(nil)
	_ Target = (*DSQLCluster)(nil)
)

// checkMaxConns rejects a pool size that pgxpool cannot use.
func checkMaxConns(maxConns int) error {
	if maxConns < 1 || maxConns > 1<<31-1 {
		return fmt.Errorf("invalid pool size %d: use at least 1 connection", maxConns)
	}
	return nil
}

// ErrInvalidOptions matches, with errors.Is, the errors a target returns for options that
// cannot work, such as a malformed DSQL endpoint, as opposed to failures to reach the
// database.
var ErrInvalidOptions = errors.New("invalid target options")

// optionsError marks err as ErrInvalidOptions without changing its message.
type optionsError struct{ err error }

func (e optionsError) Error() string   { return e.err.Error() }
func (e optionsError) Unwrap() []error { return []error{e.err, ErrInvalidOptions} }
