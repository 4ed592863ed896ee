// Package scenario loads scenario files and produces each scenario's seeded order stream.
//
// A scenario file is YAML with an optional defaults block and a list of scenarios. Loading
// happens in three steps: defaults, strict parsing, validation. Every error names the file,
// line and column, the scenario and the key.
package scenario

import (
	"time"

	"github.com/google/uuid"
)

// Side is the side of an order: a buyer of contracts or a seller.
type Side string

// The two sides of an order.
const (
	Buy  Side = "buy"
	Sell Side = "sell"
)

// Outcome is the resolution of a binary market.
type Outcome string

// Outcomes of a market. Drawn is only a scenario setting: each market's outcome is then drawn
// from the seed, and Scenario.MarketOutcome returns Yes or No.
const (
	Yes   Outcome = "yes"
	No    Outcome = "no"
	Drawn Outcome = "seed"
)

// Isolation levels a scenario can ask for. Aurora DSQL supports only RepeatableRead.
const (
	RepeatableRead = "repeatable-read"
	Serializable   = "serializable"
	ReadCommitted  = "read-committed"
)

// Scenario is one validated workload: markets, accounts, the order flows that make up its
// order stream, and how the run treats them.
//
// Its methods are safe for concurrent use. Parse derives lookup tables for them, so a
// Scenario must not be changed after Parse returns it. A Scenario built by hand works too,
// but its methods then rebuild those tables on every call.
type Scenario struct {
	Name        string
	Description string

	// Seed fixes the order stream, the ids and every drawn outcome.
	Seed uint64

	// Markets is the number of binary markets.
	Markets int

	// Accounts lists the groups of trading accounts, in order. Account indexes used in Order
	// run across all groups: the first group's accounts come first.
	Accounts []AccountGroup

	// Flows lists the order flows. The stream interleaves them in a seeded order.
	Flows []Flow

	// Concurrency is how many orders are in flight at once.
	Concurrency int

	// Rate caps orders per second over the whole run; 0 means no cap.
	Rate int

	Retry Retry

	// Isolation is RepeatableRead, Serializable or ReadCommitted.
	Isolation string

	// Schema names the schema variant.
	Schema string

	// Outcome is Yes, No or Drawn, for every market.
	Outcome Outcome

	// ExpectContention marks a hot scenario: a run in which no transaction was retried and no
	// fill was skipped is inconclusive, because it may have run serially.
	ExpectContention bool

	// plan is derived by Parse; it is nil in a Scenario built by hand.
	plan *plan
}

// AccountGroup is a set of accounts funded alike.
type AccountGroup struct {
	Name  string
	Count int
	// Balance is each account's deposit, in cents.
	Balance int64
}

// Flow is one kind of order in the stream.
type Flow struct {
	// Count is the number of orders the flow contributes.
	Count int64
	// Group names the AccountGroup whose accounts place the orders, picked uniformly.
	Group string
	// Markets lists the market indexes (0-based) the orders go to, picked uniformly; empty
	// means every market.
	Markets []int
	// Side is Buy or Sell; empty means each order's side is drawn.
	Side Side
	// Price bounds the limit price in cents, within 1..99, drawn uniformly.
	Price Range
	// Quantity bounds the number of contracts, at least 1, drawn uniformly.
	Quantity Range
}

// Range is an inclusive range of whole numbers.
type Range struct {
	Min, Max int64
}

// Retry is the transaction runner's policy for serialization failures and deadlocks.
type Retry struct {
	// MaxAttempts counts the first attempt: 1 means never retry.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the exponential backoff; the sleep before retry n is
	// drawn uniformly from [0, min(MaxBackoff, BaseBackoff*2^(n-1))).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
}

// Order is one order of the stream.
type Order struct {
	// Seq is the order's position in the stream, from 0.
	Seq int64
	// Flow is the index in Scenario.Flows of the flow that contributed the order.
	Flow int
	// ID is the client-generated order id, derived from the seed and Seq.
	ID uuid.UUID
	// Market and Account are indexes: Market into 0..Markets-1, Account across all groups.
	Market  int
	Account int
	Side    Side
	// Price is the limit price in cents per contract, 1..99.
	Price int64
	// Quantity is the number of contracts, at least 1.
	Quantity int64
}
