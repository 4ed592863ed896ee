package engine

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"parity/scenario"
	"parity/schema"
)

// exchange is a small in-memory exchange with named accounts, for matching tests.
type exchange struct {
	t      *testing.T
	x      *Memory
	market uuid.UUID
	ids    map[string]uuid.UUID
	names  map[uuid.UUID]string
}

func newExchange(t *testing.T, balances map[string]int64) *exchange {
	t.Helper()
	e := &exchange{t: t, x: NewMemory(), market: uuid.New(), ids: map[string]uuid.UUID{},
		names: map[uuid.UUID]string{}}
	for name, cents := range balances {
		id := uuid.New()
		e.ids[name], e.names[id] = id, name
		e.x.Deposit(id, cents)
	}
	return e
}

// place places an order and returns its id and match.
func (e *exchange) place(account string, side scenario.Side, price, qty int64) (uuid.UUID, *Match) {
	e.t.Helper()
	id, ok := e.ids[account]
	if !ok {
		e.t.Fatalf("no account %q", account)
	}
	t := Taker{ID: uuid.New(), Market: e.market, Account: id, Side: side, Price: price, Quantity: qty}
	m, err := e.x.Place(context.Background(), t, DefaultMaxFills)
	if err != nil {
		e.t.Fatalf("place %s %s %d@%d: %v", account, side, qty, price, err)
	}
	return t.ID, m
}

func (e *exchange) free(account string) int64   { return e.x.Cash[e.ids[account]].Free }
func (e *exchange) locked(account string) int64 { return e.x.Cash[e.ids[account]].Locked }
func (e *exchange) position(account string) int64 {
	return e.x.Positions[e.market][e.ids[account]]
}

// fillSummary is a fill reduced to what the tests compare.
type fillSummary struct {
	maker    uuid.UUID
	price    int64
	quantity int64
}

func summarize(m *Match) []fillSummary {
	var out []fillSummary
	for _, f := range m.Fills {
		out = append(out, fillSummary{f.Maker.ID, f.Price, f.Quantity})
	}
	return out
}

func TestPlacePriceTimePriority(t *testing.T) {
	e := newExchange(t, map[string]int64{"a": 10000, "b": 10000, "c": 10000, "taker": 10000})
	late, _ := e.place("a", scenario.Sell, 40, 1)
	early, _ := e.place("b", scenario.Sell, 42, 1)
	sameEarly, _ := e.place("c", scenario.Sell, 42, 1)
	_, _ = e.place("a", scenario.Sell, 45, 1) // does not cross 44
	_, m := e.place("taker", scenario.Buy, 44, 5)

	want := []fillSummary{{late, 40, 1}, {early, 42, 1}, {sameEarly, 42, 1}}
	got := summarize(m)
	if len(got) != len(want) {
		t.Fatalf("fills = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fill %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if m.Status != schema.StatusOpen || m.Filled != 3 {
		t.Errorf("taker status %s filled %d, want open with 3 filled", m.Status, m.Filled)
	}
	if book := e.x.Book(e.market, scenario.Buy); len(book) != 1 || book[0].Quantity-book[0].Filled != 2 {
		t.Errorf("resting bids = %v, want the taker's remaining 2", book)
	}
}

func TestPlaceSellTakerBestBidFirst(t *testing.T) {
	e := newExchange(t, map[string]int64{"a": 10000, "b": 10000, "taker": 10000})
	low, _ := e.place("a", scenario.Buy, 30, 1)
	high, _ := e.place("b", scenario.Buy, 35, 1)
	_, m := e.place("taker", scenario.Sell, 30, 2)

	got := summarize(m)
	if len(got) != 2 || got[0].maker != high || got[1].maker != low {
		t.Fatalf("fills = %v, want the 35 bid then the 30 bid", got)
	}
	if got[0].price != 35 || got[1].price != 30 {
		t.Errorf("fill prices = %d, %d, want the resting prices 35, 30", got[0].price, got[1].price)
	}
}

func TestPlacePartialFills(t *testing.T) {
	e := newExchange(t, map[string]int64{"maker": 100000, "taker": 100000})
	maker, _ := e.place("maker", scenario.Sell, 50, 10)
	_, m1 := e.place("taker", scenario.Buy, 50, 4)
	_, m2 := e.place("taker", scenario.Buy, 50, 4)

	if m1.Status != schema.StatusFilled || m2.Status != schema.StatusFilled {
		t.Errorf("taker statuses %s, %s, want filled", m1.Status, m2.Status)
	}
	o := e.x.Orders[maker]
	if o.Filled != 8 || o.Status != schema.StatusOpen {
		t.Errorf("maker filled %d status %s, want 8 open", o.Filled, o.Status)
	}
	_, m3 := e.place("taker", scenario.Buy, 50, 5)
	if m3.Filled != 2 || m3.Status != schema.StatusOpen {
		t.Errorf("third taker filled %d status %s, want 2 and resting", m3.Filled, m3.Status)
	}
	if o.Status != schema.StatusFilled {
		t.Errorf("maker status %s, want filled", o.Status)
	}
}

func TestPlaceSelfTradePrevention(t *testing.T) {
	e := newExchange(t, map[string]int64{"a": 100000, "b": 100000})
	own, _ := e.place("a", scenario.Sell, 40, 3)
	other, _ := e.place("b", scenario.Sell, 41, 3)
	_, m := e.place("a", scenario.Buy, 45, 3)

	for _, f := range m.Fills {
		if f.Buyer == f.Seller {
			t.Fatalf("fill pairs account a with itself: %+v", f)
		}
	}
	if got := summarize(m); len(got) != 1 || got[0].maker != other {
		t.Errorf("fills = %v, want one against b's order", got)
	}
	if o := e.x.Orders[own]; o.Status != schema.StatusCancelled || o.Reason != schema.ReasonSelfTrade {
		t.Errorf("own resting order %s/%s, want cancelled for self-trade", o.Status, o.Reason)
	}
}

func TestPlaceConditionalFunding(t *testing.T) {
	tests := []struct {
		name        string
		takerCash   int64
		makerCash   int64
		takerSide   scenario.Side
		wantFilled  int64
		wantStatus  string
		wantReason  string
		wantMakerOK bool
	}{
		{"buyer funds all", 10000, 10000, scenario.Buy, 10, schema.StatusFilled, "", true},
		{"buyer funds exactly", 500, 10000, scenario.Buy, 10, schema.StatusFilled, "", true},
		{"buyer one cent short", 499, 10000, scenario.Buy, 0, schema.StatusCancelled, schema.ReasonUnfunded, true},
		// A new short at 50 needs 100-50 = 50 cents per contract.
		{"short seller funds", 10000, 500, scenario.Buy, 10, schema.StatusFilled, "", true},
		{"short seller unfunded", 10000, 499, scenario.Buy, 0, schema.StatusOpen, "", false},
		{"taker short seller unfunded", 499, 10000, scenario.Sell, 0, schema.StatusCancelled, schema.ReasonUnfunded, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExchange(t, map[string]int64{"taker": tt.takerCash, "maker": tt.makerCash})
			makerSide := scenario.Sell
			if tt.takerSide == scenario.Sell {
				makerSide = scenario.Buy
			}
			maker, _ := e.place("maker", makerSide, 50, 10)
			_, m := e.place("taker", tt.takerSide, 50, 10)

			if m.Filled != tt.wantFilled || m.Status != tt.wantStatus || m.Reason != tt.wantReason {
				t.Errorf("taker filled %d %s/%s, want %d %s/%s", m.Filled, m.Status, m.Reason,
					tt.wantFilled, tt.wantStatus, tt.wantReason)
			}
			makerCancelled := e.x.Orders[maker].Reason == schema.ReasonUnfunded
			if makerCancelled == tt.wantMakerOK {
				t.Errorf("maker cancelled as unfunded = %v, want %v", makerCancelled, !tt.wantMakerOK)
			}
			for _, name := range []string{"taker", "maker"} {
				if e.free(name) < 0 || e.locked(name) < 0 {
					t.Errorf("%s has free %d locked %d", name, e.free(name), e.locked(name))
				}
			}
			if total := e.free("taker") + e.locked("taker") + e.free("maker") + e.locked("maker"); total != tt.takerCash+tt.makerCash {
				t.Errorf("cash total %d, want %d", total, tt.takerCash+tt.makerCash)
			}
		})
	}
}

func TestPlaceSkipsUnfundedMakerAndGoesOn(t *testing.T) {
	e := newExchange(t, map[string]int64{"broke": 0, "rich": 100000, "taker": 100000})
	broke, _ := e.place("broke", scenario.Buy, 60, 1)
	rich, _ := e.place("rich", scenario.Buy, 55, 1)
	_, m := e.place("taker", scenario.Sell, 50, 2)

	if got := summarize(m); len(got) != 1 || got[0].maker != rich {
		t.Fatalf("fills = %v, want one against the funded bid", got)
	}
	if m.UnfundedFills != 1 {
		t.Errorf("unfunded fills = %d, want 1", m.UnfundedFills)
	}
	if o := e.x.Orders[broke]; o.Status != schema.StatusCancelled || o.Reason != schema.ReasonUnfunded {
		t.Errorf("broke bid %s/%s, want cancelled unfunded", o.Status, o.Reason)
	}
	if m.Status != schema.StatusOpen {
		t.Errorf("taker status %s, want open: nothing else crosses", m.Status)
	}
}

func TestPlaceCollateralFollowsPosition(t *testing.T) {
	e := newExchange(t, map[string]int64{"a": 10000, "b": 10000})
	// a sells 3 at 40 short: locks 300, receives 120, pays 300 of collateral from free.
	e.place("b", scenario.Buy, 40, 3)
	e.place("a", scenario.Sell, 40, 3)
	if e.position("a") != -3 || e.locked("a") != 300 || e.free("a") != 10000+120-300 {
		t.Fatalf("a: position %d locked %d free %d", e.position("a"), e.locked("a"), e.free("a"))
	}
	// a buys 2 back at 70: closes two shorts, releasing 200.
	e.place("b", scenario.Sell, 70, 5)
	e.place("a", scenario.Buy, 70, 2)
	if e.position("a") != -1 || e.locked("a") != 100 || e.free("a") != 10000+120-300-140+200 {
		t.Errorf("a: position %d locked %d free %d", e.position("a"), e.locked("a"), e.free("a"))
	}
	// b held 3 long and sold 2 of them: no collateral needed.
	if e.position("b") != 1 || e.locked("b") != 0 {
		t.Errorf("b: position %d locked %d, want 1 and 0", e.position("b"), e.locked("b"))
	}
}

func TestPlaceFillLimit(t *testing.T) {
	e := newExchange(t, map[string]int64{"maker": 100000, "taker": 100000})
	for range 5 {
		e.place("maker", scenario.Sell, 50, 1)
	}
	taker := Taker{ID: uuid.New(), Market: e.market, Account: e.ids["taker"], Side: scenario.Buy,
		Price: 50, Quantity: 5}
	m, err := e.x.Place(context.Background(), taker, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Fills) != 3 || m.Status != schema.StatusCancelled || m.Reason != schema.ReasonFillLimit {
		t.Errorf("fills %d %s/%s, want 3 cancelled fill-limit", len(m.Fills), m.Status, m.Reason)
	}
}
