package schema

import (
	"fmt"
	"strings"
)

// Table names inside a namespace.
const (
	MarkerTable    = "parity_run"
	AccountsTable  = "accounts"
	MarketsTable   = "markets"
	OrdersTable    = "orders"
	TradesTable    = "trades"
	PositionsTable = "positions"
	LedgerTable    = "ledger"
	HistoryTable   = "history"
	ExchangeTable  = "exchange"
)

// Ledger buckets. Free and Locked are an account's cash; Funding balances deposits, so an
// account's funding entries sum to minus what it deposited; Clearing carries settlement cash
// from shorts to longs and nets to zero per settled market.
const (
	BucketFree     = "free"
	BucketLocked   = "locked"
	BucketFunding  = "funding"
	BucketClearing = "clearing"
)

// Journal kinds in the ledger.
const (
	KindDeposit    = "deposit"
	KindFill       = "fill"
	KindSettlement = "settlement"
)

// Order statuses and the reasons an order is cancelled.
const (
	StatusOpen      = "open"
	StatusFilled    = "filled"
	StatusCancelled = "cancelled"

	ReasonUnfunded  = "unfunded"
	ReasonSelfTrade = "self-trade"
	ReasonFillLimit = "fill-limit"
)

// Market statuses. A settling market has its outcome and takes no more orders; a settled
// one has paid out every position.
const (
	MarketOpen     = "open"
	MarketSettling = "settling"
	MarketSettled  = "settled"
)

// table is one CREATE TABLE statement. No table has a foreign key, a sequence, a CHECK
// constraint or a default: DSQL lacks or restricts them, and a CHECK on balances would turn
// an engine bug into an error instead of letting the audit find it.
type table struct {
	name    string
	columns string
}

type index struct {
	name    string
	table   string
	columns string
}

var markerTable = table{MarkerTable, `
	id uuid PRIMARY KEY,
	tool text NOT NULL,
	format integer NOT NULL,
	variant text NOT NULL,
	dialect text NOT NULL,
	scenario text NOT NULL,
	seed text NOT NULL,
	isolation text NOT NULL,
	sabotage text NOT NULL,
	created_at timestamptz NOT NULL,
	finished_at timestamptz`}

var ledgerTables = []table{
	{AccountsTable, `
	id uuid PRIMARY KEY,
	name text NOT NULL,
	free bigint NOT NULL,
	locked bigint NOT NULL,
	deposited bigint NOT NULL,
	version bigint NOT NULL`},
	{MarketsTable, `
	id uuid PRIMARY KEY,
	name text NOT NULL,
	status text NOT NULL,
	outcome text,
	version bigint NOT NULL`},
	{OrdersTable, `
	id uuid PRIMARY KEY,
	seq bigint NOT NULL,
	market_id uuid NOT NULL,
	account_id uuid NOT NULL,
	side text NOT NULL,
	price bigint NOT NULL,
	quantity bigint NOT NULL,
	filled bigint NOT NULL,
	status text NOT NULL,
	cancel_reason text,
	book_seq bigint NOT NULL,
	attempt integer NOT NULL,
	account_versions text NOT NULL`},
	{TradesTable, `
	id uuid PRIMARY KEY,
	market_id uuid NOT NULL,
	taker_order_id uuid NOT NULL,
	maker_order_id uuid NOT NULL,
	buyer_id uuid NOT NULL,
	seller_id uuid NOT NULL,
	price bigint NOT NULL,
	quantity bigint NOT NULL,
	book_seq bigint NOT NULL,
	fill_index integer NOT NULL`},
	{PositionsTable, `
	account_id uuid NOT NULL,
	market_id uuid NOT NULL,
	quantity bigint NOT NULL,
	settled boolean NOT NULL,
	PRIMARY KEY (account_id, market_id)`},
	{LedgerTable, `
	id uuid PRIMARY KEY,
	journal_id uuid NOT NULL,
	kind text NOT NULL,
	account_id uuid,
	bucket text NOT NULL,
	amount bigint NOT NULL,
	market_id uuid,
	order_id uuid,
	trade_id uuid`},
	{HistoryTable, `
	seq bigint PRIMARY KEY,
	order_id uuid NOT NULL,
	outcome text NOT NULL,
	attempts integer NOT NULL,
	lost_commits integer NOT NULL,
	resolved_committed integer NOT NULL,
	resolved_not_committed integer NOT NULL,
	status text,
	cancel_reason text,
	filled bigint NOT NULL,
	fills integer NOT NULL,
	notional bigint NOT NULL`},
}

var exchangeTable = table{ExchangeTable, `
	id integer PRIMARY KEY,
	fills bigint NOT NULL`}

var ledgerIndexes = []index{
	{"orders_book", OrdersTable, "market_id, side, status, price, book_seq"},
	{"trades_taker", TradesTable, "taker_order_id"},
	{"trades_maker", TradesTable, "maker_order_id"},
	{"positions_market", PositionsTable, "market_id"},
	{"ledger_account", LedgerTable, "account_id"},
	{"ledger_journal", LedgerTable, "journal_id"},
}

// tables returns the variant's tables after the marker, in creation order.
func (v Variant) tables() []table {
	tables := append([]table(nil), ledgerTables...)
	if v.SharedCounter {
		tables = append(tables, exchangeTable)
	}
	return tables
}

func createTableSQL(ns Namespace, t table) string {
	return fmt.Sprintf("CREATE TABLE %s (%s\n)", ns.Table(t.name), t.columns)
}

// createIndexSQL renders one index definition in the dialect: DSQL builds indexes
// asynchronously and rejects a plain CREATE INDEX.
func createIndexSQL(ns Namespace, d Dialect, ix index) string {
	verb := "CREATE INDEX"
	if d == DSQL {
		verb = "CREATE INDEX ASYNC"
	}
	return fmt.Sprintf("%s %s ON %s (%s)", verb, quoteIdent(ix.name), ns.Table(ix.table), ix.columns)
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
