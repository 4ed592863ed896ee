package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// Faults are deliberate defects in the engine, used to show that the audit catches them.
// The zero value is the correct engine.
type Faults struct {
	// LostUpdate reads each balance, computes the new one in Go and writes it back as an
	// absolute value; the engine runs it at READ COMMITTED.
	LostUpdate bool
	// UnconditionalDebit debits without checking the balance.
	UnconditionalDebit bool
	// SplitFill moves each fill's credits out of the order's transaction into a second one
	// after COMMIT, and fails every SplitFillFailEvery-th of those on purpose.
	SplitFill bool
	// MissingEntry leaves out one ledger entry of each order's first fill.
	MissingEntry bool
	// BlindRetry resends an order whose COMMIT reply was lost as a new order, without
	// looking it up first.
	BlindRetry bool
}

// SplitFillFailEvery is how often the split-fill sabotage loses a deferred credit: the
// failure injected between the debit and the credit.
const SplitFillFailEvery = 5

// lostUpdatePause is how long the lost-update sabotage waits between reading a balance and
// writing it back.
const lostUpdatePause = 2 * time.Millisecond

// Sabotage kinds, by the name the command line uses.
var sabotages = map[string]Faults{
	"lost-update":         {LostUpdate: true},
	"unconditional-debit": {UnconditionalDebit: true},
	"split-fill":          {SplitFill: true},
	"missing-entry":       {MissingEntry: true},
	"blind-retry":         {BlindRetry: true},
}

// SabotageKinds returns the names of the sabotage kinds, sorted.
func SabotageKinds() []string {
	kinds := make([]string, 0, len(sabotages))
	for k := range sabotages {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Sabotage returns the faults of a sabotage kind.
func Sabotage(kind string) (Faults, error) {
	f, ok := sabotages[kind]
	if !ok {
		return Faults{}, fmt.Errorf("unknown sabotage kind %q: use one of %s", kind,
			strings.Join(SabotageKinds(), ", "))
	}
	return f, nil
}

// Credit is one account's part of a fill that the split-fill sabotage applies after the
// order's transaction has committed.
type Credit struct {
	Trade   uuid.UUID
	Market  uuid.UUID
	Order   uuid.UUID
	Account uuid.UUID
	Change  CashChange
}

// splitMoves is the split-fill sabotage's view of a fill: the buyer pays the price and the
// seller locks its collateral now, while the seller's proceeds and the buyer's released
// collateral are credited after COMMIT.
func (b *sqlBook) splitMoves(f Fill) []cashMove {
	proceeds := f.Price * f.Quantity
	buyerDebit := CashChange{Free: -proceeds}
	sellerDebit := CashChange{Free: f.SellerCash.Free - proceeds, Locked: f.SellerCash.Locked}
	credits := []Credit{
		{Account: f.Buyer, Change: CashChange{f.BuyerCash.Free - buyerDebit.Free, f.BuyerCash.Locked}},
		{Account: f.Seller, Change: CashChange{Free: proceeds}},
	}
	for _, c := range credits {
		if c.Change != (CashChange{}) {
			c.Trade, c.Market, c.Order = f.ID, b.taker.Market, b.taker.ID
			b.deferred[f.ID] = append(b.deferred[f.ID], c)
		}
	}
	return []cashMove{{f.Buyer, buyerDebit, true}, {f.Seller, sellerDebit, false}}
}

// creditLater applies the split-fill sabotage's deferred credits in a transaction of their
// own, after the order's has committed. Every SplitFillFailEvery-th credit is dropped, as if
// the process had died between the two transactions.
func (e *Engine) creditLater(ctx context.Context, rng *rand.Rand, credits map[uuid.UUID][]Credit) {
	var apply []Credit
	for _, cs := range credits {
		for _, c := range cs {
			if e.deferredCredits.Add(1)%SplitFillFailEvery == 0 {
				e.log.Warn("sabotage: dropping a credit between debit and credit",
					"trade", c.Trade, "account", c.Account, "cents", c.Change.Free+c.Change.Locked)
				continue
			}
			apply = append(apply, c)
		}
	}
	res := e.admin.Run(ctx, rng, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, c := range apply {
			b.Queue(fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
				version = version + 1 WHERE id = $1`, e.ns.Table(schema.AccountsTable)),
				c.Account, c.Change.Free, c.Change.Locked)
			for _, en := range []Entry{{c.Account, schema.BucketFree, c.Change.Free},
				{c.Account, schema.BucketLocked, c.Change.Locked}} {
				if en.Amount == 0 {
					continue
				}
				b.Queue(fmt.Sprintf(`INSERT INTO %s (id, journal_id, kind, account_id, bucket,
					amount, market_id, order_id, trade_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $2)`,
					e.ns.Table(schema.LedgerTable)), uuid.New(), c.Trade, schema.KindFill,
					en.Account, en.Bucket, en.Amount, c.Market, c.Order)
			}
		}
		return tx.SendBatch(ctx, b).Close()
	}, nil)
	if res.Outcome != Committed {
		e.log.Warn("sabotage: deferred credits failed", "outcome", res.Outcome, "err", res.Err)
	}
}
