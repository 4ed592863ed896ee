package verify

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// queryWitnesses runs sql, whose rows are offending rows with the total number of offending
// rows as the last column, and collects up to MaxWitnesses of them with scan.
func queryWitnesses(ctx context.Context, db DB, sql string, r *Result,
	scan func(pgx.Rows, *int64) (Witness, error)) error {
	rows, err := db.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		w, err := scan(rows, &r.Violations)
		if err != nil {
			return err
		}
		r.Witnesses = append(r.Witnesses, w)
	}
	return rows.Err()
}

func count(ctx context.Context, db DB, ns schema.Namespace, table string) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, "SELECT count(*) FROM "+ns.Table(table)).Scan(&n)
	return n, err
}

var ledgerBalanced = Check{
	Name:        "ledger-balanced",
	Description: "the ledger sums to zero overall and within every journal",
	run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
		var total int64
		err := db.QueryRow(ctx, fmt.Sprintf(`SELECT count(DISTINCT journal_id),
			COALESCE(sum(amount), 0)::bigint FROM %s`, ns.Table(schema.LedgerTable))).
			Scan(&r.Checked, &total)
		if err != nil {
			return err
		}
		err = queryWitnesses(ctx, db, fmt.Sprintf(`SELECT journal_id, min(kind),
			sum(amount)::bigint, count(*), count(*) OVER ()
			FROM %s GROUP BY journal_id HAVING sum(amount) <> 0
			ORDER BY abs(sum(amount)) DESC, journal_id LIMIT %d`,
			ns.Table(schema.LedgerTable), MaxWitnesses), r,
			func(rows pgx.Rows, violations *int64) (Witness, error) {
				var id uuid.UUID
				var kind string
				var sum, entries int64
				err := rows.Scan(&id, &kind, &sum, &entries, violations)
				return Witness{Kind: "journal", ID: id.String(), Name: kind,
					Values: []Value{{"sum", sum}, {"entries", entries}}}, err
			})
		r.Expected = "every journal sums to 0; ledger total 0"
		r.Found = fmt.Sprintf("%d unbalanced of %d journals; ledger total %d", r.Violations,
			r.Checked, total)
		if total != 0 && r.Violations == 0 {
			r.Violations = 1
		}
		return err
	},
}

var cashConserved = Check{
	Name:        "cash-conserved",
	Description: "free plus locked cash over all accounts equals what was deposited",
	run: func(ctx context.Context, db DB, ns schema.Namespace, exp Expect, r *Result) error {
		var cash, deposited, funding int64
		err := db.QueryRow(ctx, fmt.Sprintf(`SELECT count(*),
			COALESCE(sum(free + locked), 0)::bigint, COALESCE(sum(deposited), 0)::bigint,
			(SELECT COALESCE(sum(amount), 0)::bigint FROM %s WHERE bucket = $1)
			FROM %s`, ns.Table(schema.LedgerTable), ns.Table(schema.AccountsTable)),
			schema.BucketFunding).Scan(&r.Checked, &cash, &deposited, &funding)
		if err != nil {
			return err
		}
		want := deposited
		r.Expected = "cash = deposits = funding journals"
		if exp.Deposits != nil {
			want = *exp.Deposits
			r.Expected += fmt.Sprintf(" = %d (the scenario's deposits)", want)
		}
		r.Found = fmt.Sprintf("cash %d, deposits %d, funding journals %d", cash, deposited, -funding)
		r.Details = map[string]int64{"cash": cash, "deposits": deposited, "funding_journals": -funding}
		if cash == deposited && -funding == deposited && deposited == want {
			return nil
		}
		r.Witnesses = []Witness{{Kind: "total", ID: "all accounts", Values: []Value{
			{"cash", cash}, {"deposits", deposited}, {"funding journals", -funding},
			{"expected deposits", want}}}}
		r.Violations = 1
		return queryWitnesses(ctx, db, fmt.Sprintf(`WITH f AS (
				SELECT account_id, -sum(amount)::bigint AS funded FROM %[2]s
				WHERE bucket = '%[3]s' GROUP BY account_id)
			SELECT COALESCE(a.id, f.account_id), COALESCE(a.name, '(no account row)'),
				COALESCE(a.deposited, 0), COALESCE(f.funded, 0), count(*) OVER ()
			FROM %[1]s a FULL JOIN f ON f.account_id = a.id
			WHERE COALESCE(a.deposited, 0) <> COALESCE(f.funded, 0)
			ORDER BY 1 LIMIT %[4]d`, ns.Table(schema.AccountsTable),
			ns.Table(schema.LedgerTable), schema.BucketFunding, MaxWitnesses-1), r,
			func(rows pgx.Rows, violations *int64) (Witness, error) {
				w, err := scanAccount("deposited", "funding journals")(rows, violations)
				*violations++ // the totals witness
				return w, err
			})
	},
}

var noNegativeBalance = Check{
	Name:        "no-negative-balance",
	Description: "no account's free or locked cash is negative",
	run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
		var err error
		if r.Checked, err = count(ctx, db, ns, schema.AccountsTable); err != nil {
			return err
		}
		r.Expected = "free >= 0 and locked >= 0 for every account"
		err = queryWitnesses(ctx, db, fmt.Sprintf(`SELECT id, name, free, locked, count(*) OVER ()
			FROM %s WHERE free < 0 OR locked < 0 ORDER BY least(free, locked), id LIMIT %d`,
			ns.Table(schema.AccountsTable), MaxWitnesses), r, scanAccount("free", "locked"))
		r.Found = fmt.Sprintf("%d of %d accounts negative", r.Violations, r.Checked)
		return err
	},
}

var balancesMatchLedger = Check{
	Name:        "balances-match-ledger",
	Description: "every account's free and locked cash equal the replay of its ledger entries",
	run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
		var err error
		if r.Checked, err = count(ctx, db, ns, schema.AccountsTable); err != nil {
			return err
		}
		r.Expected = "free = sum of free entries and locked = sum of locked entries, per account"
		err = queryWitnesses(ctx, db, fmt.Sprintf(`WITH l AS (
				SELECT account_id,
					COALESCE(sum(amount) FILTER (WHERE bucket = 'free'), 0)::bigint AS free,
					COALESCE(sum(amount) FILTER (WHERE bucket = 'locked'), 0)::bigint AS locked
				FROM %[2]s WHERE account_id IS NOT NULL AND bucket IN ('free', 'locked')
				GROUP BY account_id)
			SELECT COALESCE(a.id, l.account_id), COALESCE(a.name, '(no account row)'),
				COALESCE(a.free, 0), COALESCE(l.free, 0), COALESCE(a.locked, 0),
				COALESCE(l.locked, 0), count(*) OVER ()
			FROM %[1]s a FULL JOIN l ON l.account_id = a.id
			WHERE COALESCE(a.free, 0) <> COALESCE(l.free, 0)
				OR COALESCE(a.locked, 0) <> COALESCE(l.locked, 0)
			ORDER BY 1 LIMIT %[3]d`,
			ns.Table(schema.AccountsTable), ns.Table(schema.LedgerTable), MaxWitnesses), r,
			scanAccount("free", "ledger free", "locked", "ledger locked"))
		r.Found = fmt.Sprintf("%d of %d accounts differ from their ledger", r.Violations, r.Checked)
		return err
	},
}

// scanAccount scans an account witness: id, name, the named figures, then the count.
func scanAccount(names ...string) func(pgx.Rows, *int64) (Witness, error) {
	return func(rows pgx.Rows, violations *int64) (Witness, error) {
		var id uuid.UUID
		var name string
		figures := make([]int64, len(names))
		dest := []any{&id, &name}
		for i := range figures {
			dest = append(dest, &figures[i])
		}
		if err := rows.Scan(append(dest, violations)...); err != nil {
			return Witness{}, err
		}
		w := Witness{Kind: "account", ID: id.String(), Name: name}
		for i, n := range names {
			w.Values = append(w.Values, Value{n, figures[i]})
		}
		return w, nil
	}
}

var contractsZeroSum = Check{
	Name:        "contracts-zero-sum",
	Description: "the positions in every market sum to zero contracts",
	run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
		var err error
		if r.Checked, err = count(ctx, db, ns, schema.MarketsTable); err != nil {
			return err
		}
		r.Expected = "long contracts = short contracts in every market"
		err = queryWitnesses(ctx, db, fmt.Sprintf(`SELECT m.id, m.name,
			COALESCE(sum(p.quantity), 0)::bigint,
			COALESCE(sum(p.quantity) FILTER (WHERE p.quantity > 0), 0)::bigint,
			COALESCE(-sum(p.quantity) FILTER (WHERE p.quantity < 0), 0)::bigint,
			count(*) OVER ()
			FROM %s m LEFT JOIN %s p ON p.market_id = m.id GROUP BY m.id, m.name
			HAVING COALESCE(sum(p.quantity), 0) <> 0 ORDER BY m.name LIMIT %d`,
			ns.Table(schema.MarketsTable), ns.Table(schema.PositionsTable), MaxWitnesses), r,
			func(rows pgx.Rows, violations *int64) (Witness, error) {
				var id uuid.UUID
				var name string
				var net, long, short int64
				err := rows.Scan(&id, &name, &net, &long, &short, violations)
				return Witness{Kind: "market", ID: id.String(), Name: name,
					Values: []Value{{"net", net}, {"long", long}, {"short", short}}}, err
			})
		r.Found = fmt.Sprintf("%d of %d markets do not net to zero", r.Violations, r.Checked)
		return err
	},
}
