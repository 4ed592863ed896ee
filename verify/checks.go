package verify

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// rowCheck is the shape of most checks: count the rows of one table as the rows checked,
// list the rows that break the rule, and sum up.
type rowCheck struct {
	name, description string
	// table is the table whose rows count as checked.
	table    string
	expected string
	// sql lists the offending rows, with the number of them as its last column. It names
	// tables as {accounts}, {orders} and so on, and has no LIMIT.
	sql  string
	scan func(pgx.Rows, *int64) (Witness, error)
	// found formats the violations and the rows checked.
	found string
}

func (c rowCheck) check() Check {
	return Check{Name: c.name, Description: c.description,
		run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
			var err error
			if r.Checked, err = count(ctx, db, ns, c.table); err != nil {
				return err
			}
			r.Expected = c.expected
			sql := fmt.Sprintf("%s LIMIT %d", expand(c.sql, ns), MaxWitnesses)
			err = queryWitnesses(ctx, db, sql, r, c.scan)
			r.Found = fmt.Sprintf(c.found, r.Violations, r.Checked)
			return err
		}}
}

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

var noNegativeBalance = rowCheck{
	name:        "no-negative-balance",
	description: "no account's free or locked cash is negative",
	table:       schema.AccountsTable,
	expected:    "free >= 0 and locked >= 0 for every account",
	sql: `SELECT id, name, free, locked, count(*) OVER ()
		FROM {accounts} WHERE free < 0 OR locked < 0 ORDER BY least(free, locked), id`,
	scan:  scanAccount("free", "locked"),
	found: "%d of %d accounts negative",
}.check()

var balancesMatchLedger = rowCheck{
	name:        "balances-match-ledger",
	description: "every account's free and locked cash equal the replay of its ledger entries",
	table:       schema.AccountsTable,
	expected:    "free = sum of free entries and locked = sum of locked entries, per account",
	sql: `WITH l AS (
			SELECT account_id,
				COALESCE(sum(amount) FILTER (WHERE bucket = 'free'), 0)::bigint AS free,
				COALESCE(sum(amount) FILTER (WHERE bucket = 'locked'), 0)::bigint AS locked
			FROM {ledger} WHERE account_id IS NOT NULL AND bucket IN ('free', 'locked')
			GROUP BY account_id)
		SELECT COALESCE(a.id, l.account_id), COALESCE(a.name, '(no account row)'),
			COALESCE(a.free, 0), COALESCE(l.free, 0), COALESCE(a.locked, 0),
			COALESCE(l.locked, 0), count(*) OVER ()
		FROM {accounts} a FULL JOIN l ON l.account_id = a.id
		WHERE COALESCE(a.free, 0) <> COALESCE(l.free, 0)
			OR COALESCE(a.locked, 0) <> COALESCE(l.locked, 0)
		ORDER BY 1`,
	scan:  scanAccount("free", "ledger free", "locked", "ledger locked"),
	found: "%d of %d accounts differ from their ledger",
}.check()

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

var contractsZeroSum = rowCheck{
	name:        "contracts-zero-sum",
	description: "the positions in every market sum to zero contracts",
	table:       schema.MarketsTable,
	expected:    "long contracts = short contracts in every market",
	sql: `SELECT m.id, m.name, COALESCE(sum(p.quantity), 0)::bigint,
			COALESCE(sum(p.quantity) FILTER (WHERE p.quantity > 0), 0)::bigint,
			COALESCE(-sum(p.quantity) FILTER (WHERE p.quantity < 0), 0)::bigint,
			count(*) OVER ()
		FROM {markets} m LEFT JOIN {positions} p ON p.market_id = m.id GROUP BY m.id, m.name
		HAVING COALESCE(sum(p.quantity), 0) <> 0 ORDER BY m.name`,
	scan:  scanRow("market", "net", "long", "short"),
	found: "%d of %d markets do not net to zero",
}.check()
