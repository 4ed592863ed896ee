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
	// books holds each market side's resting orders in price-time priority.
	books map[bookSide][]*MemoryOrder
}

type bookSide struct {
	market uuid.UUID
	side   scenario.Side
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
		books:     map[bookSide][]*MemoryOrder{},
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
	b.crossed = len(b.candidates)
	return Place(ctx, b, t, maxFills)
}

// Book returns the market's resting orders on one side, in price-time priority.
func (x *Memory) Book(market uuid.UUID, side scenario.Side) []*MemoryOrder {
	return slices.Clone(x.books[bookSide{market, side}])
}

// priority orders resting orders on one side: best price first, then the earliest.
func priority(side scenario.Side) func(a, b *MemoryOrder) int {
	return func(a, b *MemoryOrder) int {
		byPrice := cmp.Compare(a.Price, b.Price)
		if side == scenario.Buy {
			byPrice = -byPrice
		}
		return cmp.Or(byPrice, cmp.Compare(a.BookSeq, b.BookSeq))
	}
}

func opposite(side scenario.Side) scenario.Side {
	if side == scenario.Sell {
		return scenario.Buy
	}
	return scenario.Sell
}

// crossing returns the resting orders that cross the taker: a prefix of the opposite book.
func (x *Memory) crossing(t Taker) []Resting {
	var rs []Resting
	for _, o := range x.books[bookSide{t.Market, opposite(t.Side)}] {
		if !Crosses(t.Side, t.Price, o.Price) {
			break
		}
		rs = append(rs, Resting{ID: o.ID, Account: o.Account, Price: o.Price,
			Remaining: o.Quantity - o.Filled, BookSeq: o.BookSeq})
	}
	return rs
}

// settleBook removes the first n orders of a book side that are no longer open, and rests
// the taker if it is.
func (x *Memory) settleBook(t *MemoryOrder, n int) {
	key := bookSide{t.Market, opposite(t.Side)}
	book := x.books[key]
	kept := book[:0]
	for _, o := range book[:n] {
		if o.Status == schema.StatusOpen {
			kept = append(kept, o)
		}
	}
	x.books[key] = append(kept, book[n:]...)
	if t.Status != schema.StatusOpen {
		return
	}
	own := bookSide{t.Market, t.Side}
	i, _ := slices.BinarySearchFunc(x.books[own], t, priority(t.Side))
	x.books[own] = slices.Insert(x.books[own], i, t)
}

type memoryBook struct {
	x          *Memory
	taker      Taker
	seq        int64
	candidates []Resting
	// crossed is how many resting orders crossed the taker when matching began.
	crossed int
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
	o := &MemoryOrder{Taker: t, Filled: m.Filled, Status: m.Status, Reason: m.Reason, BookSeq: b.seq}
	b.x.Orders[t.ID] = o
	b.x.settleBook(o, b.crossed)
	return nil
}
