package verify

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// contractValue is the payout of a winning contract, in cents, and the collateral of a short one.
const contractValue = 100

// marketSettlement is one market's positions and settlement entries, summed.
type marketSettlement struct {
	id                     uuid.UUID
	name, status, outcome  string
	longs, shorts          int64 // contracts held long and short
	unsettled              int64 // positions not yet paid out
	clearing               int64 // sum of the market's clearing entries
	paid, released, refund int64 // cents to longs, collateral taken from shorts, returned to shorts
	stray                  int64 // cents of settlement entries of accounts with no position to settle
	total                  int64 // sum of all the market's settlement entries
}

// violations returns the ways the market's settlement breaks the rules, as witness values.
func (m marketSettlement) violations() []Value {
	wantPaid, wantRefund := int64(0), contractValue*m.shorts
	if m.outcome == "yes" {
		wantPaid, wantRefund = contractValue*m.longs, 0
	}
	var bad []Value
	add := func(ok bool, name string, found int64) {
		if !ok {
			bad = append(bad, Value{name, found})
		}
	}
	add(m.outcome == "yes" || m.outcome == "no", "outcome missing", 0)
	add(m.unsettled == 0, "positions unsettled", m.unsettled)
	add(m.clearing == 0, "clearing balance", m.clearing)
	add(m.total == 0, "settlement sum", m.total)
	add(m.paid == wantPaid, "paid to longs", m.paid)
	add(m.released == contractValue*m.shorts, "released from shorts", m.released)
	add(m.refund == wantRefund, "refunded to shorts", m.refund)
	add(m.stray == 0, "paid to accounts without a position", m.stray)
	if len(bad) > 0 {
		bad = append(bad, Value{"long contracts", m.longs}, Value{"short contracts", m.shorts})
	}
	return bad
}

var settlementZeroSum = Check{
	Name:      "settlement-zero-sum",
	FinalOnly: true,
	Description: "every settled market paid 100 cents per winning contract out of the shorts' " +
		"collateral, released all collateral, and its settlement entries sum to zero",
	run: func(ctx context.Context, db DB, ns schema.Namespace, exp Expect, r *Result) error {
		markets, err := readSettlements(ctx, db, ns)
		if err != nil {
			return err
		}
		var open int64
		for _, m := range markets {
			if m.status == schema.MarketOpen && m.total == 0 && m.clearing == 0 {
				open++
				continue
			}
			r.Checked++
			bad := m.violations()
			if len(bad) == 0 {
				continue
			}
			r.Violations++
			if len(r.Witnesses) < MaxWitnesses {
				r.Witnesses = append(r.Witnesses, Witness{Kind: "market", ID: m.id.String(),
					Name: m.name, Values: bad})
			}
		}
		r.Expected = "payouts = 100 x winning contracts = collateral taken; clearing nets to 0"
		r.Found = fmt.Sprintf("%d of %d settled markets break the rule", r.Violations, r.Checked)
		if open > 0 {
			r.Found += fmt.Sprintf("; %d markets not settled", open)
			if exp.Phase == Final {
				r.Violations += open
			}
		}
		if r.Checked == 0 && r.Violations == 0 {
			r.Verdict = Unknown
			r.Error = "no market has been settled"
		}
		return nil
	},
}

func readSettlements(ctx context.Context, db DB, ns schema.Namespace) ([]marketSettlement, error) {
	rows, err := db.Query(ctx, fmt.Sprintf(`WITH p AS (
			SELECT market_id,
				COALESCE(sum(quantity) FILTER (WHERE quantity > 0), 0)::bigint AS longs,
				COALESCE(-sum(quantity) FILTER (WHERE quantity < 0), 0)::bigint AS shorts,
				count(*) FILTER (WHERE NOT settled) AS unsettled
			FROM %[2]s GROUP BY market_id),
		e AS (
			SELECT l.market_id,
				COALESCE(sum(l.amount) FILTER (WHERE l.bucket = 'clearing'), 0)::bigint AS clearing,
				COALESCE(sum(l.amount) FILTER (WHERE l.bucket = 'free' AND p.quantity > 0), 0)::bigint AS paid,
				COALESCE(-sum(l.amount) FILTER (WHERE l.bucket = 'locked' AND p.quantity < 0), 0)::bigint AS released,
				COALESCE(sum(l.amount) FILTER (WHERE l.bucket = 'free' AND p.quantity < 0), 0)::bigint AS refund,
				COALESCE(sum(abs(l.amount)) FILTER (WHERE l.bucket <> 'clearing' AND (p.quantity IS NULL
					OR p.quantity = 0 OR (l.bucket = 'locked' AND p.quantity > 0))), 0)::bigint AS stray,
				sum(l.amount)::bigint AS total
			FROM %[3]s l LEFT JOIN %[2]s p ON p.account_id = l.account_id AND p.market_id = l.market_id
			WHERE l.kind = 'settlement' GROUP BY l.market_id)
		SELECT m.id, m.name, m.status, COALESCE(m.outcome, ''),
			COALESCE(p.longs, 0), COALESCE(p.shorts, 0), COALESCE(p.unsettled, 0),
			COALESCE(e.clearing, 0), COALESCE(e.paid, 0), COALESCE(e.released, 0),
			COALESCE(e.refund, 0), COALESCE(e.stray, 0), COALESCE(e.total, 0)
		FROM %[1]s m LEFT JOIN p ON p.market_id = m.id LEFT JOIN e ON e.market_id = m.id
		ORDER BY m.name`,
		ns.Table(schema.MarketsTable), ns.Table(schema.PositionsTable), ns.Table(schema.LedgerTable)))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (marketSettlement, error) {
		var m marketSettlement
		err := row.Scan(&m.id, &m.name, &m.status, &m.outcome, &m.longs, &m.shorts, &m.unsettled,
			&m.clearing, &m.paid, &m.released, &m.refund, &m.stray, &m.total)
		return m, err
	})
}
