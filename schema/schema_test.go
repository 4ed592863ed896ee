package schema

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"parity/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestCreateOpenDrop(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t, 2)
	for _, v := range []Variant{DistinctRows, SharedRow} {
		t.Run(v.Name, func(t *testing.T) {
			name := NewName(time.Now())
			meta := Meta{Scenario: "proof", Seed: 1<<63 + 5, Isolation: "repeatable-read"}
			ns, err := Create(ctx, pool, PostgreSQL, v, name, meta)
			if err != nil {
				t.Fatal(err)
			}
			var tables, indexes int
			err = pool.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM pg_tables WHERE schemaname = $1),
				(SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname NOT LIKE '%_pkey')`,
				name).Scan(&tables, &indexes)
			if err != nil {
				t.Fatal(err)
			}
			if want := len(v.tables()) + 1; tables != want {
				t.Errorf("%d tables, want %d", tables, want)
			}
			if indexes != len(ledgerIndexes) {
				t.Errorf("%d secondary indexes, want %d", indexes, len(ledgerIndexes))
			}

			opened, err := Open(ctx, pool, name)
			if err != nil {
				t.Fatal(err)
			}
			if opened.Variant.Name != v.Name || opened.Meta.Seed != meta.Seed || opened.Meta.Scenario != "proof" {
				t.Errorf("opened %+v, want variant %s seed %d", opened, v.Name, meta.Seed)
			}
			names, err := List(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if !contains(names, name) {
				t.Errorf("List = %v, lacks %s", names, name)
			}

			if err := Drop(ctx, pool, ns.Name); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(ctx, pool, name); !errors.Is(err, ErrNotFound) {
				t.Errorf("Open after Drop: %v, want ErrNotFound", err)
			}
		})
	}
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func TestDropLeavesOthersAlone(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t, 2)

	foreign := "parity_not_ours_" + strings.ToLower(NewName(time.Now())[len(Prefix):])
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+quoteIdent(foreign)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP SCHEMA "+quoteIdent(foreign)+" CASCADE") })
	if err := Drop(ctx, pool, foreign); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Drop of a schema without a marker: %v, want ErrNotOurs", err)
	}

	name := NewName(time.Now())
	if _, err := Create(ctx, pool, PostgreSQL, DistinctRows, name, Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE "+quoteIdent(name)+".someone_elses (id int)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP SCHEMA "+quoteIdent(name)+" CASCADE") })
	if err := Drop(ctx, pool, name); err == nil {
		t.Fatal("Drop removed a namespace holding a table Parity did not create")
	}
	var exists bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables
		WHERE schemaname = $1 AND tablename = 'someone_elses')`, name).Scan(&exists)
	if err != nil || !exists {
		t.Errorf("the foreign table is gone (exists %v, %v)", exists, err)
	}
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"", "public", "parity_", "parity_X", `parity_a"; DROP TABLE x; --`,
		"parity_" + strings.Repeat("a", 57)} {
		if err := ValidateName(name); err == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
		}
	}
	if err := ValidateName(NewName(time.Now())); err != nil {
		t.Errorf("ValidateName(NewName()) = %v", err)
	}
}

func TestIndexDialects(t *testing.T) {
	ns := Namespace{Name: "parity_x"}
	ix := index{"orders_book", OrdersTable, "market_id, side"}
	if got := createIndexSQL(ns, PostgreSQL, ix); !strings.HasPrefix(got, "CREATE INDEX \"orders_book\" ON") {
		t.Errorf("PostgreSQL index DDL = %q", got)
	}
	if got := createIndexSQL(ns, DSQL, ix); !strings.HasPrefix(got, "CREATE INDEX ASYNC \"orders_book\" ON") {
		t.Errorf("DSQL index DDL = %q", got)
	}
}

func TestDDLAvoidsWhatDSQLLacks(t *testing.T) {
	ns := Namespace{Name: "parity_x"}
	for _, tb := range append(SharedRow.tables(), markerTable) {
		ddl := strings.ToUpper(createTableSQL(ns, tb))
		for _, banned := range []string{"SERIAL", "REFERENCES", "CHECK", "DEFAULT", "SEQUENCE", "NUMERIC"} {
			if strings.Contains(ddl, banned) {
				t.Errorf("table %s uses %s: %s", tb.name, banned, ddl)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	if v, err := Lookup("distinct-rows"); err != nil || v.Name != "distinct-rows" {
		t.Errorf("Lookup(distinct-rows) = %v, %v", v, err)
	}
	if _, err := Lookup("flat"); !errors.Is(err, ErrUnknownVariant) || !strings.Contains(err.Error(), "distinct-rows") {
		t.Errorf("Lookup(flat) = %v, want ErrUnknownVariant naming the variants", err)
	}
}
