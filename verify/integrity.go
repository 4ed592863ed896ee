package verify

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// tables returns the namespace's quoted table names, for the SQL of the checks.
func tables(ns schema.Namespace) map[string]string {
	return map[string]string{
		"accounts":  ns.Table(schema.AccountsTable),
		"markets":   ns.Table(schema.MarketsTable),
		"orders":    ns.Table(schema.OrdersTable),
		"trades":    ns.Table(schema.TradesTable),
		"positions": ns.Table(schema.PositionsTable),
		"ledger":    ns.Table(schema.LedgerTable),
		"history":   ns.Table(schema.HistoryTable),
	}
}

// expand replaces {name} with the namespace's table of that name.
func expand(sql string, ns schema.Namespace) string {
	for name, table := range tables(ns) {
		sql = strings.ReplaceAll(sql, "{"+name+"}", table)
	}
	return sql
}

// scanRow scans a witness row of the given kind: an id, a name, the named figures, then the
// count of offending rows.
func scanRow(kind string, names ...string) func(pgx.Rows, *int64) (Witness, error) {
	return func(rows pgx.Rows, violations *int64) (Witness, error) {
		w, err := scanAccount(names...)(rows, violations)
		w.Kind = kind
		return w, err
	}
}

var ordersMatchTrades = rowCheck{
	name: "orders-match-trades",
	description: "every order's filled quantity is at most its quantity and equals the sum of " +
		"its trades, and its status agrees",
	table:    schema.OrdersTable,
	expected: "0 <= filled <= quantity; filled = sum of its trades; filled orders and only those complete",
	sql: `WITH t AS (
			SELECT id, sum(quantity)::bigint AS filled FROM (
				SELECT taker_order_id AS id, quantity FROM {trades}
				UNION ALL SELECT maker_order_id, quantity FROM {trades}) x
			GROUP BY id)
		SELECT o.id, 'seq ' || o.seq, o.quantity, o.filled, COALESCE(t.filled, 0), count(*) OVER ()
		FROM {orders} o LEFT JOIN t ON t.id = o.id
		WHERE o.filled < 0 OR o.filled > o.quantity OR o.filled <> COALESCE(t.filled, 0)
			OR (o.status = 'filled') <> (o.filled = o.quantity)
			OR o.status NOT IN ('open', 'filled', 'cancelled')
			OR (o.status = 'cancelled') <> (o.cancel_reason IS NOT NULL)
		ORDER BY o.seq`,
	scan:  scanRow("order", "quantity", "filled", "traded"),
	found: "%d of %d orders disagree with their trades",
}.check()

var tradesValid = rowCheck{
	name: "trades-valid",
	description: "every trade joins a resting order and a later taker of the same market on " +
		"opposite sides, at the resting order's price, within both limits",
	table:    schema.TradesTable,
	expected: "price = maker's price, within both limits; buyer and seller are the orders' accounts",
	sql: `SELECT t.id, COALESCE('taker seq ' || tk.seq, 'missing order'),
			t.price, COALESCE(mk.price, 0), COALESCE(tk.price, 0), t.quantity, count(*) OVER ()
		FROM {trades} t
		LEFT JOIN {orders} tk ON tk.id = t.taker_order_id
		LEFT JOIN {orders} mk ON mk.id = t.maker_order_id
		WHERE tk.id IS NULL OR mk.id IS NULL OR t.quantity < 1
			OR t.price <> mk.price OR tk.side = mk.side
			OR tk.market_id <> t.market_id OR mk.market_id <> t.market_id
			OR mk.book_seq >= tk.book_seq
			OR (tk.side = 'buy' AND (t.price > tk.price OR t.price < mk.price))
			OR (tk.side = 'sell' AND (t.price < tk.price OR t.price > mk.price))
			OR t.buyer_id <> CASE WHEN tk.side = 'buy' THEN tk.account_id ELSE mk.account_id END
			OR t.seller_id <> CASE WHEN tk.side = 'sell' THEN tk.account_id ELSE mk.account_id END
		ORDER BY t.id`,
	scan:  scanRow("trade", "price", "maker price", "taker limit", "quantity"),
	found: "%d of %d trades invalid",
}.check()

var noSelfTrade = rowCheck{
	name:        "no-self-trade",
	description: "no trade pairs an account with itself",
	table:       schema.TradesTable,
	expected:    "buyer <> seller in every trade",
	sql: `SELECT t.id, COALESCE('account ' || a.name, 'unknown account'), t.price, t.quantity,
			count(*) OVER ()
		FROM {trades} t LEFT JOIN {accounts} a ON a.id = t.buyer_id
		WHERE t.buyer_id = t.seller_id ORDER BY t.id`,
	scan:  scanRow("trade", "price", "quantity"),
	found: "%d of %d trades are self-trades",
}.check()

var bookNotCrossed = rowCheck{
	name:        "book-not-crossed",
	description: "in every market the best resting bid is below the best resting ask",
	table:       schema.MarketsTable,
	expected:    "best bid < best ask among open orders",
	sql: `WITH b AS (
			SELECT market_id, max(price) AS bid FROM {orders}
			WHERE side = 'buy' AND status = 'open' GROUP BY market_id),
		a AS (
			SELECT market_id, min(price) AS ask FROM {orders}
			WHERE side = 'sell' AND status = 'open' GROUP BY market_id)
		SELECT m.id, m.name, b.bid, a.ask, count(*) OVER ()
		FROM {markets} m JOIN b ON b.market_id = m.id JOIN a ON a.market_id = m.id
		WHERE b.bid >= a.ask ORDER BY m.name`,
	scan:  scanRow("market", "best bid", "best ask"),
	found: "%d of %d markets crossed",
}.check()

var collateralLocked = rowCheck{
	name:        "collateral-locked",
	description: "every account's locked cash is 100 cents per short contract it holds in markets not yet settled",
	table:       schema.AccountsTable,
	expected:    fmt.Sprintf("locked = %d x unsettled short contracts, per account", contractValue),
	sql: fmt.Sprintf(`WITH p AS (
			SELECT account_id,
				COALESCE(%d * -sum(quantity) FILTER (WHERE quantity < 0 AND NOT settled), 0)::bigint AS need
			FROM {positions} GROUP BY account_id)
		SELECT a.id, a.name, a.locked, COALESCE(p.need, 0), count(*) OVER ()
		FROM {accounts} a LEFT JOIN p ON p.account_id = a.id
		WHERE a.locked <> COALESCE(p.need, 0) ORDER BY a.id`, contractValue),
	scan:  scanAccount("locked", "collateral needed"),
	found: "%d of %d accounts lock the wrong amount",
}.check()

var positionsMatchTrades = rowCheck{
	name:        "positions-match-trades",
	description: "every position equals the contracts its account bought minus those it sold in that market",
	table:       schema.PositionsTable,
	expected:    "position = bought - sold, per account and market",
	sql: `WITH t AS (
			SELECT account_id, market_id, sum(q)::bigint AS q FROM (
				SELECT buyer_id AS account_id, market_id, quantity AS q FROM {trades}
				UNION ALL SELECT seller_id, market_id, -quantity FROM {trades}) x
			GROUP BY account_id, market_id)
		SELECT COALESCE(p.account_id, t.account_id),
			COALESCE(a.name, '?') || ' in ' || COALESCE(m.name, '?'),
			COALESCE(p.quantity, 0), COALESCE(t.q, 0), count(*) OVER ()
		FROM {positions} p
		FULL JOIN t ON t.account_id = p.account_id AND t.market_id = p.market_id
		LEFT JOIN {accounts} a ON a.id = COALESCE(p.account_id, t.account_id)
		LEFT JOIN {markets} m ON m.id = COALESCE(p.market_id, t.market_id)
		WHERE COALESCE(p.quantity, 0) <> COALESCE(t.q, 0)
		ORDER BY 1, 2`,
	scan:  scanRow("position", "position", "traded"),
	found: "%d of %d positions differ from their trades",
}.check()
