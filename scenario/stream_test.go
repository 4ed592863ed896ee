package scenario

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite testdata/stream.golden from the current stream")

// streamScenario returns a scenario of testdata/valid/stream.yaml.
func streamScenario(t testing.TB, name string) *Scenario {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "valid", "stream.yaml"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return parseScenario(t, data, name)
}

// parseScenario parses data and returns the named scenario.
func parseScenario(t testing.TB, data []byte, name string) *Scenario {
	t.Helper()
	f, err := Parse(data, "stream.yaml", Options{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	s, err := f.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// allOrders returns the whole stream of s.
func allOrders(s *Scenario) []Order {
	orders := make([]Order, s.TotalOrders())
	for i := range orders {
		orders[i] = s.Order(int64(i))
	}
	return orders
}

// withSeed returns the stream fixture with the seed of the large scenario replaced.
func withSeed(t *testing.T, seed string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "valid", "stream.yaml"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if !bytes.Contains(data, []byte("seed: 99\n")) {
		t.Fatal("stream.yaml no longer contains seed: 99")
	}
	return bytes.Replace(data, []byte("seed: 99\n"), []byte("seed: "+seed+"\n"), 1)
}

func TestOrder_Deterministic(t *testing.T) {
	first := allOrders(parseScenario(t, withSeed(t, "99"), "large"))
	second := allOrders(parseScenario(t, withSeed(t, "99"), "large"))
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("order %d differs between two parses of one seed:\n%+v\n%+v",
				i, first[i], second[i])
		}
	}
}

func TestOrder_SeedChangesStream(t *testing.T) {
	a := allOrders(parseScenario(t, withSeed(t, "99"), "large"))
	b := allOrders(parseScenario(t, withSeed(t, "100"), "large"))
	sameID, sameFlow := 0, 0
	for i := range a {
		if a[i].ID == b[i].ID {
			sameID++
		}
		if a[i].Flow == b[i].Flow {
			sameFlow++
		}
	}
	if sameID != 0 {
		t.Errorf("%d of %d order ids are equal under seeds 99 and 100", sameID, len(a))
	}
	// Two independent shuffles of flows with 60 % and 40 % of the orders agree on about
	// 0.6^2 + 0.4^2 = 52 % of positions.
	if sameFlow > len(a)*6/10 {
		t.Errorf("%d of %d positions hold the same flow under seeds 99 and 100", sameFlow, len(a))
	}
}

func TestOrder_FlowCounts(t *testing.T) {
	for _, name := range []string{"mixed", "halves", "single", "large"} {
		t.Run(name, func(t *testing.T) {
			s := streamScenario(t, name)
			counts := make([]int64, len(s.Flows))
			for _, o := range allOrders(s) {
				counts[o.Flow]++
			}
			var total int64
			for f, flow := range s.Flows {
				total += flow.Count
				if counts[f] != flow.Count {
					t.Errorf("flow %d contributed %d orders, want %d", f, counts[f], flow.Count)
				}
			}
			if s.TotalOrders() != total {
				t.Errorf("TotalOrders() = %d, want %d", s.TotalOrders(), total)
			}
		})
	}
}

func TestOrder_Interleaves(t *testing.T) {
	for _, seed := range []string{"1", "2", "20261204", "18446744073709551615"} {
		t.Run("seed "+seed, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "valid", "stream.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.Replace(data, []byte("  - name: halves\n"),
				[]byte("  - name: halves\n    seed: "+seed+"\n"), 1)
			orders := allOrders(parseScenario(t, data, "halves"))

			// A uniform shuffle of two flows of 500 has about 501 runs of one flow; one
			// flow after the other has 2.
			runs := 1
			for i := 1; i < len(orders); i++ {
				if orders[i].Flow != orders[i-1].Flow {
					runs++
				}
			}
			if runs < len(orders)/4 {
				t.Errorf("the stream has %d runs of one flow, want at least %d", runs,
					len(orders)/4)
			}
			var firstTenth [2]int
			for _, o := range orders[:len(orders)/10] {
				firstTenth[o.Flow]++
			}
			if firstTenth[0] < 20 || firstTenth[1] < 20 {
				t.Errorf("the first tenth of the stream holds %v orders of each flow, want at "+
					"least 20 of each", firstTenth)
			}
		})
	}

	t.Run("small flow spread out", func(t *testing.T) {
		s := streamScenario(t, "mixed")
		first, last := int64(-1), int64(-1)
		for _, o := range allOrders(s) {
			if o.Flow == 2 {
				if first < 0 {
					first = o.Seq
				}
				last = o.Seq
			}
		}
		if span := last - first; span < s.TotalOrders()/2 {
			t.Errorf("the 17 orders of flow 2 span positions %d..%d, want a span of at least %d",
				first, last, s.TotalOrders()/2)
		}
	})
}

func TestOrder_FieldsWithinBounds(t *testing.T) {
	s := streamScenario(t, "large")
	for seq, o := range allOrders(s) {
		checkOrder(t, s, int64(seq), o)
	}
}

// checkOrder fails the test unless every field of o lies within the bounds of its flow.
func checkOrder(t *testing.T, s *Scenario, seq int64, o Order) {
	t.Helper()
	if o.Seq != seq {
		t.Fatalf("order %d has Seq %d", seq, o.Seq)
	}
	if o.Flow < 0 || o.Flow >= len(s.Flows) {
		t.Fatalf("order %d: flow %d outside 0..%d", seq, o.Flow, len(s.Flows)-1)
	}

	flow := s.Flows[o.Flow]
	if o.Price < flow.Price.Min || o.Price > flow.Price.Max {
		t.Fatalf("order %d: price %d outside %+v", seq, o.Price, flow.Price)
	}
	if o.Quantity < flow.Quantity.Min || o.Quantity > flow.Quantity.Max {
		t.Fatalf("order %d: quantity %d outside %+v", seq, o.Quantity, flow.Quantity)
	}
	if o.Account < 0 || o.Account >= s.TotalAccounts() {
		t.Fatalf("order %d: account %d outside 0..%d", seq, o.Account, s.TotalAccounts()-1)
	}
	if group := s.AccountGroupOf(o.Account); group != flow.Group {
		t.Fatalf("order %d: account %d is in group %s, want %s", seq, o.Account, group, flow.Group)
	}

	if o.Market < 0 || o.Market >= s.Markets {
		t.Fatalf("order %d: market %d outside 0..%d", seq, o.Market, s.Markets-1)
	}
	if len(flow.Markets) > 0 && !slices.Contains(flow.Markets, o.Market) {
		t.Fatalf("order %d: market %d not in the flow's %v", seq, o.Market, flow.Markets)
	}
	if o.Side != Buy && o.Side != Sell {
		t.Fatalf("order %d: side %q", seq, o.Side)
	}
	if flow.Side != "" && o.Side != flow.Side {
		t.Fatalf("order %d: side %s, want %s", seq, o.Side, flow.Side)
	}
	if o.ID.Version() != 4 || o.ID.Variant() != uuid.RFC4122 {
		t.Fatalf("order %d: id %s is not a version 4 UUID", seq, o.ID)
	}
}

func TestOrder_DrawsCoverRanges(t *testing.T) {
	s := streamScenario(t, "large")
	orders := allOrders(s)
	// Flows 0 and 1 of the large scenario have enough orders to draw every value of each
	// range, so a draw that misses an end of its range fails here.
	tests := []struct {
		flow                                         int
		prices, quantities, accounts, markets, sides int
	}{
		{flow: 0, prices: 99, quantities: 20, accounts: 13, markets: 7, sides: 2},
		{flow: 1, prices: 21, quantities: 1, accounts: 3, markets: 2, sides: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("flow %d", tt.flow), func(t *testing.T) {
			prices, quantities := map[int64]bool{}, map[int64]bool{}
			accounts, markets := map[int]bool{}, map[int]bool{}
			sides := map[Side]bool{}
			for _, o := range orders {
				if o.Flow != tt.flow {
					continue
				}
				prices[o.Price] = true
				quantities[o.Quantity] = true
				accounts[o.Account] = true
				markets[o.Market] = true
				sides[o.Side] = true
			}
			if len(prices) != tt.prices {
				t.Errorf("drew %d distinct prices, want %d", len(prices), tt.prices)
			}
			if len(quantities) != tt.quantities {
				t.Errorf("drew %d distinct quantities, want %d", len(quantities), tt.quantities)
			}
			if len(accounts) != tt.accounts {
				t.Errorf("used %d distinct accounts, want %d", len(accounts), tt.accounts)
			}
			if len(markets) != tt.markets {
				t.Errorf("used %d distinct markets, want %d", len(markets), tt.markets)
			}
			if len(sides) != tt.sides {
				t.Errorf("drew sides %v, want %d distinct", sides, tt.sides)
			}
		})
	}
}

func TestOrder_ConcurrentUse(t *testing.T) {
	s := streamScenario(t, "mixed")
	want := allOrders(s)
	var wg sync.WaitGroup
	mismatches := make([]int, 8)
	for w := range mismatches {
		wg.Go(func() {
			// Each worker walks the stream from a different offset.
			for i := range want {
				seq := (i + w*len(want)/len(mismatches)) % len(want)
				if s.Order(int64(seq)) != want[seq] {
					mismatches[w]++
				}
			}
		})
	}
	wg.Wait()
	for w, n := range mismatches {
		if n != 0 {
			t.Errorf("worker %d computed %d orders that differ from the sequential stream", w, n)
		}
	}
}

func TestOrder_HandBuiltScenario(t *testing.T) {
	parsed := streamScenario(t, "mixed")
	built := &Scenario{
		Name:     parsed.Name,
		Seed:     parsed.Seed,
		Markets:  parsed.Markets,
		Accounts: parsed.Accounts,
		Flows:    parsed.Flows,
	}
	if built.TotalOrders() != parsed.TotalOrders() {
		t.Fatalf("TotalOrders() = %d, want %d", built.TotalOrders(), parsed.TotalOrders())
	}
	for seq := range parsed.TotalOrders() {
		if got, want := built.Order(seq), parsed.Order(seq); got != want {
			t.Fatalf("order %d of the hand-built scenario = %+v, want %+v", seq, got, want)
		}
	}
}

func TestOrder_PanicsOutOfRange(t *testing.T) {
	s := streamScenario(t, "mixed")
	tests := []struct {
		name string
		call func()
	}{
		{"order -1", func() { s.Order(-1) }},
		{"order past the end", func() { s.Order(s.TotalOrders()) }},
		{"account -1", func() { s.AccountID(-1) }},
		{"account past the end", func() { s.AccountName(s.TotalAccounts()) }},
		{"market past the end", func() { s.MarketID(s.Markets) }},
		{"market outcome -1", func() { s.MarketOutcome(-1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.call()
		})
	}
}

func TestPermutation_Bijection(t *testing.T) {
	sizes := []uint64{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 255, 256, 257, 1000,
		4097, 65537, 200000}
	for _, n := range sizes {
		for key := range uint64(3) {
			t.Run(fmt.Sprintf("n=%d key=%d", n, key), func(t *testing.T) {
				p := newPermutation(n, mix64(key))
				hit := make([]bool, n)
				for x := range n {
					y := p.apply(x)
					if y >= n {
						t.Fatalf("apply(%d) = %d, outside [0, %d)", x, y, n)
					}
					if hit[y] {
						t.Fatalf("apply maps two values to %d", y)
					}
					hit[y] = true
				}
			})
		}
	}
}

func TestIDs_Distinct(t *testing.T) {
	s := streamScenario(t, "mixed")
	seen := make(map[uuid.UUID]string)
	add := func(id uuid.UUID, what string, version uuid.Version) {
		t.Helper()
		if other, ok := seen[id]; ok {
			t.Fatalf("%s and %s share id %s", what, other, id)
		}
		seen[id] = what
		if id.Version() != version || id.Variant() != uuid.RFC4122 {
			t.Errorf("%s id %s is not a version %d, RFC 9562 variant UUID", what, id, version)
		}
	}
	for _, o := range allOrders(s) {
		add(o.ID, fmt.Sprintf("order %d", o.Seq), 4)
	}
	for i := range s.TotalAccounts() {
		add(s.AccountID(i), fmt.Sprintf("account %d", i), 8)
	}
	for m := range s.Markets {
		add(s.MarketID(m), fmt.Sprintf("market %d", m), 8)
	}

	// The layout that keeps account and market ids apart even if the seed-derived bytes of
	// the two kinds were equal: byte 8 holds the kind, bytes 9-15 the index.
	layout := []struct {
		entity string
		id     uuid.UUID
		kind   byte
		index  uint64
	}{
		{"account 24", s.AccountID(24), kindAccount, 24},
		{"market 3", s.MarketID(3), kindMarket, 3},
	}
	for _, l := range layout {
		if l.id[8] != 0x80|l.kind {
			t.Errorf("%s id %s has byte 8 %#x, want %#x", l.entity, l.id, l.id[8], 0x80|l.kind)
		}
		if index := binary.BigEndian.Uint64(l.id[8:16]) & (1<<56 - 1); index != l.index {
			t.Errorf("%s id %s holds index %d", l.entity, l.id, index)
		}
	}

	other := parseScenario(t, withSeed(t, "100"), "large")
	large := parseScenario(t, withSeed(t, "99"), "large")
	if other.AccountID(0) == large.AccountID(0) || other.MarketID(0) == large.MarketID(0) {
		t.Error("account or market ids do not change with the seed")
	}
	if again := parseScenario(t, withSeed(t, "99"), "large"); again.AccountID(5) != large.AccountID(5) {
		t.Error("account ids differ between two parses of one seed")
	}
}

func TestAccounts_Helpers(t *testing.T) {
	s := streamScenario(t, "mixed")
	if got := s.TotalAccounts(); got != 25 {
		t.Errorf("TotalAccounts() = %d, want 25", got)
	}
	if got := s.TotalDeposits(); got != 24*100000+1000 {
		t.Errorf("TotalDeposits() = %d, want %d", got, 24*100000+1000)
	}
	tests := []struct {
		account int
		name    string
		group   string
		balance int64
	}{
		{0, "traders-1", "traders", 100000},
		{2, "traders-3", "traders", 100000},
		{23, "traders-24", "traders", 100000},
		{24, "whale-1", "whale", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.AccountName(tt.account); got != tt.name {
				t.Errorf("AccountName(%d) = %q, want %q", tt.account, got, tt.name)
			}
			if got := s.AccountGroupOf(tt.account); got != tt.group {
				t.Errorf("AccountGroupOf(%d) = %q, want %q", tt.account, got, tt.group)
			}
			if got := s.AccountBalance(tt.account); got != tt.balance {
				t.Errorf("AccountBalance(%d) = %d, want %d", tt.account, got, tt.balance)
			}
		})
	}
	if got := s.MarketName(0); got != "market-1" {
		t.Errorf("MarketName(0) = %q, want market-1", got)
	}
}

func TestMarketOutcome(t *testing.T) {
	data := []byte(`
scenarios:
  - {name: drawn, markets: 1000, outcome: seed, accounts: [{name: a, count: 1, balance: 0}],
     flows: [{count: 1, group: a, price: 50, quantity: 1}]}
  - {name: all-yes, markets: 50, outcome: "yes", accounts: [{name: a, count: 1, balance: 0}],
     flows: [{count: 1, group: a, price: 50, quantity: 1}]}
  - {name: all-no, markets: 50, outcome: "no", accounts: [{name: a, count: 1, balance: 0}],
     flows: [{count: 1, group: a, price: 50, quantity: 1}]}
`)
	tests := []struct {
		name           string
		minYes, maxYes int
	}{
		{"drawn", 400, 600},
		{"all-yes", 50, 50},
		{"all-no", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parseScenario(t, data, tt.name)
			again := parseScenario(t, data, tt.name)
			yes := 0
			for m := range s.Markets {
				outcome := s.MarketOutcome(m)
				if outcome != Yes && outcome != No {
					t.Fatalf("MarketOutcome(%d) = %q, want yes or no", m, outcome)
				}
				if outcome != again.MarketOutcome(m) {
					t.Fatalf("MarketOutcome(%d) differs between two parses", m)
				}
				if outcome == Yes {
					yes++
				}
			}
			if yes < tt.minYes || yes > tt.maxYes {
				t.Errorf("%d of %d markets resolve yes, want %d..%d", yes, s.Markets,
					tt.minYes, tt.maxYes)
			}
		})
	}
}

// TestOrder_Golden pins the stream of one seed, ids included, so that a change to the
// permutation, the draws or the id layout shows up as a diff. Run with -update after an
// intended change; every stored stream and recorded run then changes too.
func TestOrder_Golden(t *testing.T) {
	s := streamScenario(t, "mixed")
	var b strings.Builder
	for seq := range int64(40) {
		o := s.Order(seq)
		fmt.Fprintf(&b, "order %d flow=%d id=%s market=%d account=%d side=%s price=%d quantity=%d\n",
			o.Seq, o.Flow, o.ID, o.Market, o.Account, o.Side, o.Price, o.Quantity)
	}
	for _, i := range []int{0, 1, 24} {
		fmt.Fprintf(&b, "account %d id=%s name=%s\n", i, s.AccountID(i), s.AccountName(i))
	}
	for m := range s.Markets {
		fmt.Fprintf(&b, "market %d id=%s name=%s outcome=%s\n", m, s.MarketID(m), s.MarketName(m),
			s.MarketOutcome(m))
	}

	path := filepath.Join("testdata", "stream.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -run TestOrder_Golden -update to create it): %v", err)
	}
	if b.String() != string(want) {
		t.Errorf("stream differs from %s:\ngot:\n%s\nwant:\n%s", path, b.String(), want)
	}
}

func BenchmarkOrder(b *testing.B) {
	s := streamScenario(b, "large")
	total := s.TotalOrders()
	var seq int64
	b.ReportAllocs()
	for b.Loop() {
		s.Order(seq)
		seq = (seq + 1) % total
	}
}
