// Package schema owns the DDL of each schema variant in each SQL dialect, and the life of a
// run's namespace: creating it, marking it as Parity's own, finding it again and dropping it.
//
// A run never touches objects it did not create. Every namespace holds a marker table,
// parity_run, whose single row names the tool, the variant and the run; Open and Drop refuse a
// namespace without it.
package schema

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Dialect is the SQL dialect a namespace is created in.
type Dialect int

const (
	// PostgreSQL is stock PostgreSQL: transactional DDL and plain CREATE INDEX.
	PostgreSQL Dialect = iota
	// DSQL is Amazon Aurora DSQL: one DDL statement per transaction and CREATE INDEX ASYNC.
	DSQL
)

// String returns the dialect's name as used in output.
func (d Dialect) String() string {
	if d == DSQL {
		return "dsql"
	}
	return "postgresql"
}

// ErrUnknownVariant is returned by Lookup for a name that is not a schema variant.
var ErrUnknownVariant = errors.New("unknown schema variant")

// Variant is one way of laying out the ledger's tables. Every variant has the same tables and
// columns, so the engine and the verifier work on all of them. Variants differ in which
// rows a fill writes besides those, and so in how transactions conflict.
type Variant struct {
	Name        string
	Description string

	// SharedCounter makes every fill update one row shared by the whole exchange: OCC's
	// worst case, kept for comparison.
	SharedCounter bool
}

// DistinctRows is the default variant: a fill touches only the rows of its market, its two
// accounts, their positions and its own new rows.
var DistinctRows = Variant{
	Name:        "distinct-rows",
	Description: "a fill writes only its market's row, its two accounts, their positions and new rows",
}

// SharedRow adds one exchange-wide counter row that every fill updates, so that fills in
// unrelated markets conflict with each other.
var SharedRow = Variant{
	Name:          "shared-row",
	Description:   "distinct-rows plus one exchange-wide counter row that every fill updates",
	SharedCounter: true,
}

var variants = []Variant{DistinctRows, SharedRow}

// Names returns the names of all schema variants, the default first.
func Names() []string {
	names := make([]string, len(variants))
	for i, v := range variants {
		names[i] = v.Name
	}
	return names
}

// Lookup returns the variant with the given name.
func Lookup(name string) (Variant, error) {
	i := slices.IndexFunc(variants, func(v Variant) bool { return v.Name == name })
	if i < 0 {
		return Variant{}, fmt.Errorf("%w %q: use one of %s",
			ErrUnknownVariant, name, strings.Join(Names(), ", "))
	}
	return variants[i], nil
}
