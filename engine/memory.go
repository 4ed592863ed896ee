package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"parity/scenario"
	"parity/schema"
)

// Memory is an in-memory exchange with the same matching and funding rules as the database
// engine: the model that matching's unit tests run against. It is not safe for concurrent
// use.
type Memory struct {
	// Cash holds each account's free and locked cents.
	Cash map[uuid.UUID]*CashChange
	// Positions holds contracts by market, then account.
	Positions map[uuid.UUID]map[uuid.UUID]int64
	// Orders holds every order placed, by id.
	Orders map[uuid.UUID]*MemoryOrder

	bookSeq map[uuid.UUID]int64
}

// MemoryOrder is an order in the in-memory exchange.
type MemoryOrder struct {
	Taker
	Filled  int64
	Status  string
	Reason  string
	BookSeq int64
}

// NewMemory returns an empty in-memory exchange.
func NewMemory() *Memory {
	return &Memory{
		Cash:      map[uuid.UUID]*CashChange{},
		Positions: map[uuid.UUID]map[uuid.UUID]int64{},
		Orders:    map[uuid.UUID]*MemoryOrder{},
		bookSeq:   map[uuid.UUID]int64{},
	}
}

// Deposit credits an account's free cash, creating the account if needed.
func (x *Memory) Deposit(account uuid.UUID, cents int64) {
	c := x.Cash[account]
	if c == nil {
		c = &CashChange{}
		x.Cash[account] = c
	}
	c.Free += cents
}

// Place matches the taker against the in-memory book, as Place does against the database.
func (x *Memory) Place(ctx context.Context, t Taker, maxFills int) (*Match, error) {
	if _, ok := x.Orders[t.ID]; ok {
		return nil, fmt.Errorf("place order %s: already placed", t.ID)
	}
	x.bookSeq[t.Market]++
	b := &memoryBook{x: x, taker: t, seq: x.bookSeq[t.Market]}
	b.candidates = x.crossing(t)
	return Place(ctx, b, t, maxFills)
}

// Book returns the market's resting orders on one side, in price-time priority.
func (x *Memory) Book(market uuid.UUID, side scenario.Side) []*MemoryOrder {
	var book []*MemoryOrder
	for _, o := range x.Orders {
		if o.Market == market && o.Side == side && o.Status == schema.StatusOpen {
			book = append(book, o)
		}
	}
	slices.SortFunc(book, func(a, b *MemoryOrder) int {
		byPrice := cmp.Compare(a.Price, b.Price)
		if side == scenario.Buy {
			byPrice = -byPrice
		}
		return cmp.Or(byPrice, cmp.Compare(a.BookSeq, b.BookSeq))
	})
	return book
}

func (x *Memory) crossing(t Taker) []Resting {
	opposite := scenario.Sell
	if t.Side == scenario.Sell {
		opposite = scenario.Buy
	}
	var rs []Resting
	for _, o := range x.Book(t.Market, opposite) {
		if Crosses(t.Side, t.Price, o.Price) {
			rs = append(rs, Resting{ID: o.ID, Account: o.Account, Price: o.Price,
				Remaining: o.Quantity - o.Filled, BookSeq: o.BookSeq})
		}
	}
	return rs
}

type memoryBook struct {
	x          *Memory
	taker      Taker
	seq        int64
	candidates []Resting
}

func (b *memoryBook) Next(context.Context) (Resting, bool, error) {
	if len(b.candidates) == 0 {
		return Resting{}, false, nil
	}
	r := b.candidates[0]
	b.candidates = b.candidates[1:]
	return r, true, nil
}

func (b *memoryBook) Position(_ context.Context, account uuid.UUID) (int64, error) {
	return b.x.Positions[b.taker.Market][account], nil
}

// Fund applies the same rule as the database's conditional updates: each side pays only
// if its free cash covers its cost, and the fill moves cash only if both sides can pay.
func (b *memoryBook) Fund(_ context.Context, f Fill) (Funding, error) {
	buyer, seller := b.x.cash(f.Buyer), b.x.cash(f.Seller)
	buyerOK := buyer.Free >= f.BuyerCash.Cost()
	sellerOK := seller.Free >= f.SellerCash.Cost()
	switch {
	case !buyerOK:
		return BuyerUnfunded, nil
	case !sellerOK:
		return SellerUnfunded, nil
	}
	buyer.Free += f.BuyerCash.Free
	buyer.Locked += f.BuyerCash.Locked
	seller.Free += f.SellerCash.Free
	seller.Locked += f.SellerCash.Locked
	return Funded, nil
}

func (x *Memory) cash(account uuid.UUID) *CashChange {
	if x.Cash[account] == nil {
		x.Cash[account] = &CashChange{}
	}
	return x.Cash[account]
}

func (b *memoryBook) Finish(_ context.Context, t Taker, m *Match) error {
	for _, f := range m.Fills {
		maker := b.x.Orders[f.Maker.ID]
		maker.Filled += f.Quantity
		if maker.Filled == maker.Quantity {
			maker.Status = schema.StatusFilled
		}
	}
	for _, c := range m.Cancelled {
		maker := b.x.Orders[c.Order.ID]
		maker.Status, maker.Reason = schema.StatusCancelled, c.Reason
	}
	positions := b.x.Positions[t.Market]
	if positions == nil {
		positions = map[uuid.UUID]int64{}
		b.x.Positions[t.Market] = positions
	}
	for account, delta := range m.Positions {
		positions[account] += delta
	}
	b.x.Orders[t.ID] = &MemoryOrder{Taker: t, Filled: m.Filled, Status: m.Status,
		Reason: m.Reason, BookSeq: b.seq}
	return nil
}
