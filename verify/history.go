package verify

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// HistoryCounts sums the client's history: how every fired order ended as the client saw
// it, and how the COMMITs whose reply was lost were resolved.
type HistoryCounts struct {
	Orders       int64 `json:"orders"`
	Committed    int64 `json:"committed"`
	NotCommitted int64 `json:"not_committed"`
	// Ambiguous counts COMMITs whose reply was lost. Lookups, the run's or for orders whose
	// outcome stayed unknown the audit's, resolved them as committed or not committed.
	// Unresolved counts those never looked up, as with the blind-retry sabotage.
	Ambiguous            int64 `json:"ambiguous"`
	ResolvedCommitted    int64 `json:"resolved_committed"`
	ResolvedNotCommitted int64 `json:"resolved_not_committed"`
	Unresolved           int64 `json:"unresolved"`
}

var historyMatches = Check{
	Name: "history-matches",
	Description: "every order the client saw commit exists once with the fills it reported, " +
		"every order that failed left no trace, and no order was applied twice",
	FinalOnly: true,
	run: func(ctx context.Context, db DB, ns schema.Namespace, _ Expect, r *Result) error {
		h, err := countHistory(ctx, db, ns)
		if err != nil {
			return err
		}
		r.Checked = h.Orders
		r.Expected = "committed orders present once with their fills; failed orders absent; one order per stream position"
		err = queryWitnesses(ctx, db, expand(historyViolations, ns)+fmt.Sprint(MaxWitnesses), r,
			func(rows pgx.Rows, violations *int64) (Witness, error) {
				var kind string
				var id uuid.UUID
				var seq, clientFilled, dbFilled int64
				err := rows.Scan(&kind, &seq, &id, &clientFilled, &dbFilled, violations)
				return Witness{Kind: "order", ID: id.String(), Name: fmt.Sprintf("seq %d: %s", seq, kind),
					Values: []Value{{"client filled", clientFilled}, {"database filled", dbFilled}}}, err
			})
		r.Details = map[string]int64{
			"orders": h.Orders, "committed": h.Committed, "not_committed": h.NotCommitted,
			"ambiguous": h.Ambiguous, "resolved_committed": h.ResolvedCommitted,
			"resolved_not_committed": h.ResolvedNotCommitted, "unresolved": h.Unresolved,
		}
		r.Found = fmt.Sprintf("%d orders: %d committed (skipped ones included), %d not committed; "+
			"%d ambiguous commits: %d resolved committed, %d resolved not committed, %d never looked up; %d violations",
			h.Orders, h.Committed, h.NotCommitted, h.Ambiguous, h.ResolvedCommitted,
			h.ResolvedNotCommitted, h.Unresolved, r.Violations)
		return err
	},
}

// historyViolations lists the orders where the client's history and the database disagree.
// An order whose outcome the client never learned is not a violation: the audit counts it
// as resolved by its own lookup in countHistory.
const historyViolations = `WITH t AS (
		SELECT taker_order_id AS id, count(*) AS fills, sum(quantity)::bigint AS filled,
			sum(price * quantity)::bigint AS notional
		FROM {trades} GROUP BY taker_order_id),
	l AS (SELECT DISTINCT order_id AS id FROM {ledger} WHERE order_id IS NOT NULL),
	o AS (SELECT id, seq, filled, count(*) OVER (PARTITION BY seq) AS copies FROM {orders}),
	v AS (
		SELECT 'committed but missing' AS kind, h.seq, h.order_id AS id, h.filled AS a, 0::bigint AS b
		FROM {history} h LEFT JOIN o ON o.id = h.order_id
		WHERE h.outcome = 'committed' AND o.id IS NULL
		UNION ALL
		SELECT 'fills differ from the client''s', h.seq, h.order_id, h.filled, COALESCE(t.filled, 0)
		FROM {history} h JOIN o ON o.id = h.order_id LEFT JOIN t ON t.id = h.order_id
		WHERE h.outcome = 'committed' AND (h.fills <> COALESCE(t.fills, 0)
			OR h.filled <> COALESCE(t.filled, 0) OR h.notional <> COALESCE(t.notional, 0))
		UNION ALL
		SELECT 'failed but left a trace', h.seq, h.order_id, 0, COALESCE(o.filled, t.filled, 0)
		FROM {history} h LEFT JOIN o ON o.id = h.order_id LEFT JOIN t ON t.id = h.order_id
			LEFT JOIN l ON l.id = h.order_id
		WHERE h.outcome IN ('gave-up', 'failed', 'canceled')
			AND (o.id IS NOT NULL OR t.id IS NOT NULL OR l.id IS NOT NULL)
		UNION ALL
		SELECT CASE WHEN o.copies > 1 THEN 'applied twice' WHEN h.seq IS NULL THEN 'never fired by the client'
			ELSE 'committed under an id the client did not keep' END,
			o.seq, o.id, COALESCE(h.filled, 0), o.filled
		FROM o LEFT JOIN {history} h ON h.seq = o.seq
		WHERE h.seq IS NULL OR h.order_id <> o.id OR o.copies > 1)
	SELECT kind, seq, id, a, b, count(*) OVER () FROM v ORDER BY seq, kind LIMIT `

func countHistory(ctx context.Context, db DB, ns schema.Namespace) (HistoryCounts, error) {
	var h HistoryCounts
	err := db.QueryRow(ctx, expand(`SELECT count(*),
			count(*) FILTER (WHERE h.outcome = 'committed'),
			count(*) FILTER (WHERE h.outcome IN ('gave-up', 'failed', 'canceled')),
			COALESCE(sum(h.lost_commits), 0)::bigint,
			COALESCE(sum(h.resolved_committed), 0)::bigint
				+ count(*) FILTER (WHERE h.outcome = 'unknown' AND o.id IS NOT NULL),
			COALESCE(sum(h.resolved_not_committed), 0)::bigint
				+ count(*) FILTER (WHERE h.outcome = 'unknown' AND o.id IS NULL)
		FROM {history} h LEFT JOIN {orders} o ON o.id = h.order_id`, ns)).Scan(
		&h.Orders, &h.Committed, &h.NotCommitted, &h.Ambiguous, &h.ResolvedCommitted,
		&h.ResolvedNotCommitted)
	h.Unresolved = max(0, h.Ambiguous-h.ResolvedCommitted-h.ResolvedNotCommitted)
	return h, err
}
