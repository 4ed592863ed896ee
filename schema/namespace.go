package schema

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tool is the name written into every namespace's marker row.
const Tool = "parity"

// markerFormat is the layout version of the marker row and the tables; Open rejects others.
const markerFormat = 1

// Prefix starts the name of every namespace Parity creates.
const Prefix = "parity_"

var (
	// ErrNotOurs is returned by Open and Drop for a schema that lacks Parity's marker.
	ErrNotOurs = errors.New("schema is not a Parity namespace")
	// ErrNotFound is returned by Open for a schema that does not exist.
	ErrNotFound = errors.New("namespace not found")
)

var namePattern = regexp.MustCompile(`^parity_[a-z0-9_]{1,56}$`)

// DB is the part of a pgx connection or pool that schema needs.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Namespace is a run's own PostgreSQL schema. The zero value is not usable.
type Namespace struct {
	Name    string
	Variant Variant
	Meta    Meta
}

// Meta is the marker row's record of the run that created a namespace.
type Meta struct {
	Scenario  string
	Seed      uint64
	Isolation string
	// Sabotage names the deliberate engine defect of the run, empty for the correct engine.
	Sabotage  string
	Dialect   Dialect
	CreatedAt time.Time
	// FinishedAt is when the run finished: settled, with the client's history written.
	// It is zero for a run that is still going or was stopped early.
	FinishedAt time.Time
}

// Table returns the quoted, schema-qualified name of a table in the namespace.
func (ns Namespace) Table(name string) string {
	return pgx.Identifier{ns.Name, name}.Sanitize()
}

// NewName returns a fresh namespace name: the prefix, the UTC time and a random suffix, so
// that names sort by creation time and concurrent runs never collide.
func NewName(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error on supported platforms
	return Prefix + now.UTC().Format("20060102_150405") + "_" + hex.EncodeToString(b[:])
}

// ValidateName checks that name can be a Parity namespace, before any query uses it.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("invalid namespace %q: names start with %q and contain only "+
			"lowercase letters, digits and underscores", name, Prefix)
	}
	return nil
}

// Create creates the namespace name in the dialect with the variant's tables and indexes and
// writes its marker. Each DDL statement runs in its own transaction, as DSQL requires. On
// error, Create drops whatever it had created.
func Create(ctx context.Context, db DB, d Dialect, v Variant, name string, meta Meta) (Namespace, error) {
	if err := ValidateName(name); err != nil {
		return Namespace{}, err
	}
	meta.Dialect = d
	ns := Namespace{Name: name, Variant: v, Meta: meta}

	if _, err := db.Exec(ctx, "CREATE SCHEMA "+quoteIdent(name)); err != nil {
		return Namespace{}, fmt.Errorf("create schema %s: %w", name, err)
	}
	if err := createMarker(ctx, db, ns); err != nil {
		_, _ = db.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+quoteIdent(name))
		return Namespace{}, err
	}
	if err := createTables(ctx, db, ns); err != nil {
		if dropErr := Drop(context.WithoutCancel(ctx), db, name); dropErr != nil {
			err = errors.Join(err, fmt.Errorf("clean up after failed create: %w", dropErr))
		}
		return Namespace{}, err
	}
	return ns, nil
}

func createMarker(ctx context.Context, db DB, ns Namespace) error {
	if _, err := db.Exec(ctx, createTableSQL(ns, markerTable)); err != nil {
		return fmt.Errorf("create marker table: %w", err)
	}
	_, err := db.Exec(ctx, fmt.Sprintf(`INSERT INTO %s
		(id, tool, format, variant, dialect, scenario, seed, isolation, sabotage, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, ns.Table(MarkerTable)),
		uuid.New(), Tool, markerFormat, ns.Variant.Name, ns.Meta.Dialect.String(),
		ns.Meta.Scenario, strconv.FormatUint(ns.Meta.Seed, 10), ns.Meta.Isolation,
		ns.Meta.Sabotage, ns.Meta.CreatedAt.UTC())
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return nil
}

func createTables(ctx context.Context, db DB, ns Namespace) error {
	for _, t := range ns.Variant.tables() {
		if _, err := db.Exec(ctx, createTableSQL(ns, t)); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	if ns.Variant.SharedCounter {
		_, err := db.Exec(ctx, fmt.Sprintf("INSERT INTO %s (id, fills) VALUES (1, 0)",
			ns.Table(ExchangeTable)))
		if err != nil {
			return fmt.Errorf("write exchange row: %w", err)
		}
	}
	for _, ix := range ledgerIndexes {
		if err := createIndex(ctx, db, ns, ix); err != nil {
			return err
		}
	}
	return nil
}

// createIndex creates one index. On DSQL the build is asynchronous: it waits for the job,
// outside any transaction as sys.wait_for_job requires, and then checks that the index is
// valid, because a failed build leaves an invalid index behind rather than an error.
func createIndex(ctx context.Context, db DB, ns Namespace, ix index) error {
	sql := createIndexSQL(ns, ns.Meta.Dialect, ix)
	if ns.Meta.Dialect != DSQL {
		if _, err := db.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
		return nil
	}
	var jobID string
	if err := db.QueryRow(ctx, sql).Scan(&jobID); err != nil {
		return fmt.Errorf("create index %s: %w", ix.name, err)
	}
	if _, err := db.Exec(ctx, "CALL sys.wait_for_job("+quoteLiteral(jobID)+")"); err != nil {
		return fmt.Errorf("wait for index %s (job %s): %w", ix.name, jobID, err)
	}
	var valid bool
	err := db.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, ns.Name, ix.name).Scan(&valid)
	if err != nil {
		return fmt.Errorf("check index %s: %w", ix.name, err)
	}
	if !valid {
		return fmt.Errorf("create index %s: the asynchronous build (job %s) failed", ix.name, jobID)
	}
	return nil
}

// Open finds an existing namespace by name and reads its marker.
func Open(ctx context.Context, db DB, name string) (Namespace, error) {
	if err := ValidateName(name); err != nil {
		return Namespace{}, err
	}
	var exists bool
	err := db.QueryRow(ctx,
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", name).Scan(&exists)
	if err != nil {
		return Namespace{}, fmt.Errorf("look up namespace %s: %w", name, err)
	}
	if !exists {
		return Namespace{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return readMarker(ctx, db, name)
}

func readMarker(ctx context.Context, db DB, name string) (Namespace, error) {
	var hasMarker bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables
		WHERE schemaname = $1 AND tablename = $2)`, name, MarkerTable).Scan(&hasMarker)
	if err != nil {
		return Namespace{}, fmt.Errorf("look up marker of %s: %w", name, err)
	}
	if !hasMarker {
		return Namespace{}, fmt.Errorf("%w: %s has no %s table", ErrNotOurs, name, MarkerTable)
	}

	ns := Namespace{Name: name}
	var tool, variant, dialect, seed string
	var format int
	var finished *time.Time
	err = db.QueryRow(ctx, fmt.Sprintf(`SELECT tool, format, variant, dialect, scenario, seed,
		isolation, sabotage, created_at, finished_at FROM %s`, ns.Table(MarkerTable))).Scan(
		&tool, &format, &variant, &dialect, &ns.Meta.Scenario, &seed, &ns.Meta.Isolation,
		&ns.Meta.Sabotage, &ns.Meta.CreatedAt, &finished)
	if errors.Is(err, pgx.ErrNoRows) {
		return Namespace{}, fmt.Errorf("%w: %s has an empty %s table", ErrNotOurs, name, MarkerTable)
	}
	if err != nil {
		return Namespace{}, fmt.Errorf("read marker of %s: %w", name, err)
	}
	if tool != Tool || format != markerFormat {
		return Namespace{}, fmt.Errorf("%w: %s is marked by %q format %d, not %q format %d",
			ErrNotOurs, name, tool, format, Tool, markerFormat)
	}
	if ns.Variant, err = Lookup(variant); err != nil {
		return Namespace{}, fmt.Errorf("read marker of %s: %w", name, err)
	}
	if ns.Meta.Seed, err = strconv.ParseUint(seed, 10, 64); err != nil {
		return Namespace{}, fmt.Errorf("read marker of %s: seed %q: %w", name, seed, err)
	}
	if dialect == DSQL.String() {
		ns.Meta.Dialect = DSQL
	}
	if finished != nil {
		ns.Meta.FinishedAt = *finished
	}
	return ns, nil
}

// MarkFinished records in the marker that the namespace's run finished.
func MarkFinished(ctx context.Context, db DB, ns *Namespace, at time.Time) error {
	_, err := db.Exec(ctx, fmt.Sprintf("UPDATE %s SET finished_at = $1", ns.Table(MarkerTable)), at.UTC())
	if err != nil {
		return fmt.Errorf("mark %s finished: %w", ns.Name, err)
	}
	ns.Meta.FinishedAt = at
	return nil
}

// Drop removes a Parity namespace: its tables one by one, the marker last, then the schema
// itself without CASCADE, so that an object someone else put there stops the drop instead of
// vanishing with it.
func Drop(ctx context.Context, db DB, name string) error {
	ns, err := readMarker(ctx, db, name)
	if err != nil {
		return err
	}
	tables := ns.Variant.tables()
	for i := len(tables) - 1; i >= 0; i-- {
		if _, err := db.Exec(ctx, "DROP TABLE IF EXISTS "+ns.Table(tables[i].name)); err != nil {
			return fmt.Errorf("drop table %s: %w", tables[i].name, err)
		}
	}
	if _, err := db.Exec(ctx, "DROP TABLE "+ns.Table(MarkerTable)); err != nil {
		return fmt.Errorf("drop marker of %s: %w", name, err)
	}
	if _, err := db.Exec(ctx, "DROP SCHEMA "+quoteIdent(name)); err != nil {
		return fmt.Errorf("drop schema %s: %w", name, err)
	}
	return nil
}

// List returns the names of the Parity namespaces in the database, oldest first.
func List(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT n.nspname FROM pg_namespace n
		JOIN pg_tables t ON t.schemaname = n.nspname AND t.tablename = $1
		WHERE n.nspname LIKE 'parity\_%' ORDER BY n.nspname`, MarkerTable)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	return names, nil
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
