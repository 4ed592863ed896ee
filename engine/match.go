package engine

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"parity/scenario"
	"parity/schema"
)

// DefaultMaxFills caps the fills of one order. A fill changes about ten rows, and DSQL
// rejects a transaction that changes more than 3,000.
const DefaultMaxFills = 100

// Taker is the incoming order being matched.
type Taker struct {
	ID       uuid.UUID
	Seq      int64
	Market   uuid.UUID
	Account  uuid.UUID
	Side     scenario.Side
	Price    int64
	Quantity int64
}

// Resting is an order on the book, with the fields that matching reads.
type Resting struct {
	ID        uuid.UUID
	Account   uuid.UUID
	Price     int64
	Remaining int64
	// BookSeq orders resting orders of equal price: the lower arrived first.
	BookSeq int64
}

// Fill is one match of the taker against a resting order, at the resting order's price.
type Fill struct {
	// ID is the trade's id, and the id of the fill's ledger journal.
	ID       uuid.UUID
	Maker    Resting
	Price    int64
	Quantity int64
	Buyer    uuid.UUID
	Seller   uuid.UUID
	// BuyerCash and SellerCash are the fill's cash changes, computed from the positions
	// the two accounts held just before it.
	BuyerCash  CashChange
	SellerCash CashChange
}

// Cancel is a resting order removed from the book during matching.
type Cancel struct {
	Order  Resting
	Reason string
}

// Funding is the result of trying to fund a fill.
type Funding int

// Results of funding a fill. When both sides lack the cash, the book reports BuyerUnfunded.
const (
	Funded Funding = iota
	BuyerUnfunded
	SellerUnfunded
)

// Book is the state that matching reads and changes: a market's resting orders, positions
// and cash. The database and an in-memory model both implement it, so the same matching
// code runs against either.
type Book interface {
	// Next returns the next resting order that crosses the taker, in price-time priority:
	// best price first, then lowest BookSeq. It returns false when none is left.
	Next(ctx context.Context) (Resting, bool, error)
	// Position returns the account's position in the taker's market before this order.
	Position(ctx context.Context, account uuid.UUID) (int64, error)
	// Fund moves the fill's cash if both sides can pay their part, and nothing otherwise.
	Fund(ctx context.Context, f Fill) (Funding, error)
	// Finish records the outcome of matching: the taker, its fills, the changed and
	// cancelled resting orders, the positions and the ledger.
	Finish(ctx context.Context, t Taker, m *Match) error
}

// Match is the outcome of matching one taker.
type Match struct {
	Fills     []Fill
	Cancelled []Cancel
	// Filled is the taker's filled quantity.
	Filled int64
	// Status is the taker's final status, and Reason the reason it was cancelled.
	Status string
	Reason string
	// UnfundedFills counts fills skipped because one side could not pay.
	UnfundedFills int
	// Positions holds the position changes by account.
	Positions map[uuid.UUID]int64
}

// Remaining returns the taker's quantity left unfilled.
func (m *Match) Remaining(t Taker) int64 {
	return t.Quantity - m.Filled
}

// Place matches the taker against the book and records the result.
//
// The taker takes resting orders in price-time priority at their prices. An order never
// fills against its own account: a resting order of the taker's account is cancelled. A
// fill that the maker cannot fund is skipped and the maker's order cancelled. A fill that
// the taker cannot fund ends matching and cancels the taker's remainder, as reaching
// maxFills does. What is left of the taker after that rests on the book.
func Place(ctx context.Context, b Book, t Taker, maxFills int) (*Match, error) {
	m, err := match(ctx, b, t, maxFills)
	if err != nil {
		return nil, err
	}
	if err := b.Finish(ctx, t, m); err != nil {
		return nil, err
	}
	return m, nil
}

func match(ctx context.Context, b Book, t Taker, maxFills int) (*Match, error) {
	m := &Match{Positions: map[uuid.UUID]int64{}}
	base := map[uuid.UUID]int64{}
	position := func(account uuid.UUID) (int64, error) {
		p, ok := base[account]
		if !ok {
			var err error
			if p, err = b.Position(ctx, account); err != nil {
				return 0, err
			}
			base[account] = p
		}
		return p + m.Positions[account], nil
	}

	for m.Filled < t.Quantity {
		r, ok, err := b.Next(ctx)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if r.Account == t.Account {
			m.Cancelled = append(m.Cancelled, Cancel{r, schema.ReasonSelfTrade})
			continue
		}
		if len(m.Fills) == maxFills {
			m.Reason = schema.ReasonFillLimit
			break
		}
		f, err := newFill(t, r, min(m.Remaining(t), r.Remaining), position)
		if err != nil {
			return nil, err
		}
		funding, err := b.Fund(ctx, f)
		if err != nil {
			return nil, err
		}
		if funding != Funded {
			m.UnfundedFills++
			if takerSide(t, funding) {
				m.Reason = schema.ReasonUnfunded
				break
			}
			m.Cancelled = append(m.Cancelled, Cancel{r, schema.ReasonUnfunded})
			continue
		}
		m.Fills = append(m.Fills, f)
		m.Filled += f.Quantity
		m.Positions[f.Buyer] += f.Quantity
		m.Positions[f.Seller] -= f.Quantity
	}

	switch {
	case m.Filled == t.Quantity:
		m.Status, m.Reason = schema.StatusFilled, ""
	case m.Reason != "":
		m.Status = schema.StatusCancelled
	default:
		m.Status = schema.StatusOpen
	}
	return m, nil
}

func newFill(t Taker, r Resting, qty int64, position func(uuid.UUID) (int64, error)) (Fill, error) {
	if qty <= 0 {
		return Fill{}, fmt.Errorf("match order %s: resting order %s has %d remaining", t.ID, r.ID, r.Remaining)
	}
	f := Fill{ID: uuid.New(), Maker: r, Price: r.Price, Quantity: qty, Buyer: t.Account, Seller: r.Account}
	if t.Side == scenario.Sell {
		f.Buyer, f.Seller = r.Account, t.Account
	}
	buyerPos, err := position(f.Buyer)
	if err != nil {
		return Fill{}, err
	}
	sellerPos, err := position(f.Seller)
	if err != nil {
		return Fill{}, err
	}
	f.BuyerCash = BuyerChange(buyerPos, f.Price, qty)
	f.SellerCash = SellerChange(sellerPos, f.Price, qty)
	return f, nil
}

// takerSide reports whether the side that could not pay is the taker's.
func takerSide(t Taker, f Funding) bool {
	return (f == BuyerUnfunded) == (t.Side == scenario.Buy)
}

// Crosses reports whether a resting order at restingPrice on the side opposite the taker's
// can fill against a taker limited to takerPrice.
func Crosses(takerSide scenario.Side, takerPrice, restingPrice int64) bool {
	if takerSide == scenario.Buy {
		return restingPrice <= takerPrice
	}
	return restingPrice >= takerPrice
}
