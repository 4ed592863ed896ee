package scenario

import (
	"os"
	"testing"
)

// TestShippedScenarios parses the scenarios.yaml that ships with parity and checks that each
// scenario still has the shape its name promises.
func TestShippedScenarios(t *testing.T) {
	data, err := os.ReadFile("../scenarios.yaml")
	if err != nil {
		t.Fatalf("read shipped file: %v", err)
	}
	f, err := Parse(data, "scenarios.yaml", Options{Schemas: []string{defaultSchema}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name             string
		markets          int
		orders           int64
		concurrency      int
		expectContention bool
		maxAttempts      int
	}{
		{"proof", 3, 216, 216, true, 50},
		{"hot-market", 1, 400, 64, true, 50},
		{"hot-account", 2, 200, 50, true, 50},
		{"many-markets", 50, 1000, 16, false, 10},
	}
	if len(f.Scenarios) != len(tests) {
		t.Errorf("the file has %d scenarios, want %d", len(f.Scenarios), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := f.Lookup(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if s.Markets != tt.markets {
				t.Errorf("Markets = %d, want %d", s.Markets, tt.markets)
			}
			if s.TotalOrders() != tt.orders {
				t.Errorf("TotalOrders() = %d, want %d", s.TotalOrders(), tt.orders)
			}
			if s.Concurrency != tt.concurrency {
				t.Errorf("Concurrency = %d, want %d", s.Concurrency, tt.concurrency)
			}
			if s.ExpectContention != tt.expectContention {
				t.Errorf("ExpectContention = %v, want %v", s.ExpectContention, tt.expectContention)
			}
			if s.Retry.MaxAttempts != tt.maxAttempts {
				t.Errorf("Retry.MaxAttempts = %d, want %d", s.Retry.MaxAttempts, tt.maxAttempts)
			}
		})
	}

	t.Run("proof orders mostly cross", func(t *testing.T) {
		proof, err := f.Lookup("proof")
		if err != nil {
			t.Fatal(err)
		}
		if proof.TotalOrders() > int64(proof.Concurrency) {
			t.Errorf("proof has %d orders but only %d in flight, so they are not fired at once",
				proof.TotalOrders(), proof.Concurrency)
		}
		// Over all buy and sell pairs, count those whose prices cross.
		var buys, sells []int64
		for seq := range proof.TotalOrders() {
			if o := proof.Order(seq); o.Side == Buy {
				buys = append(buys, o.Price)
			} else {
				sells = append(sells, o.Price)
			}
		}
		crossing := 0
		for _, b := range buys {
			for _, s := range sells {
				if b >= s {
					crossing++
				}
			}
		}
		if pairs := len(buys) * len(sells); crossing*4 < pairs*3 {
			t.Errorf("%d of %d buy and sell pairs cross, want at least three quarters",
				crossing, pairs)
		}
	})

	t.Run("hot-account whale is underfunded", func(t *testing.T) {
		s, err := f.Lookup("hot-account")
		if err != nil {
			t.Fatal(err)
		}
		var whaleCost, whaleBalance int64
		for i := range s.TotalAccounts() {
			if s.AccountGroupOf(i) == "whale" {
				whaleBalance += s.AccountBalance(i)
			}
		}
		for seq := range s.TotalOrders() {
			if o := s.Order(seq); s.AccountGroupOf(o.Account) == "whale" {
				whaleCost += o.Price * o.Quantity
			}
		}
		if whaleBalance == 0 || whaleBalance*2 > whaleCost {
			t.Errorf("the whale holds %d cents for buys costing %d, want at least half unfunded",
				whaleBalance, whaleCost)
		}
	})

	t.Run("hot-market uses one market", func(t *testing.T) {
		s, err := f.Lookup("hot-market")
		if err != nil {
			t.Fatal(err)
		}
		for seq := range s.TotalOrders() {
			if o := s.Order(seq); o.Market != 0 {
				t.Fatalf("order %d goes to market %d", seq, o.Market)
			}
		}
	})
}
