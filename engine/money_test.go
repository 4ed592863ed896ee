package engine

import "testing"

func TestCashChanges(t *testing.T) {
	tests := []struct {
		name            string
		pos, price, qty int64
		buyer           CashChange
		seller          CashChange
	}{
		{"flat", 0, 40, 3, CashChange{-120, 0}, CashChange{120 - 300, 300}},
		{"closing all", -3, 40, 3, CashChange{-120 + 300, -300}, CashChange{120 - 300, 300}},
		{"closing some", -1, 40, 3, CashChange{-120 + 100, -100}, CashChange{120 - 300, 300}},
		{"long seller", 2, 40, 3, CashChange{-120, 0}, CashChange{120 - 100, 100}},
		{"long seller covers", 5, 99, 3, CashChange{-297, 0}, CashChange{297, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BuyerChange(tt.pos, tt.price, tt.qty); got != tt.buyer {
				t.Errorf("BuyerChange(%d, %d, %d) = %+v, want %+v", tt.pos, tt.price, tt.qty, got, tt.buyer)
			}
			if got := SellerChange(tt.pos, tt.price, tt.qty); got != tt.seller {
				t.Errorf("SellerChange(%d, %d, %d) = %+v, want %+v", tt.pos, tt.price, tt.qty, got, tt.seller)
			}
		})
	}
}

func TestFillEntriesBalance(t *testing.T) {
	for pos := int64(-5); pos <= 5; pos++ {
		for _, price := range []int64{1, 37, 50, 99} {
			for qty := int64(1); qty <= 6; qty++ {
				f := Fill{Price: price, Quantity: qty, BuyerCash: BuyerChange(pos, price, qty),
					SellerCash: SellerChange(-pos, price, qty)}
				var sum int64
				for _, e := range FillEntries(f) {
					if e.Amount == 0 {
						t.Errorf("pos %d price %d qty %d: zero entry %+v", pos, price, qty, e)
					}
					sum += e.Amount
				}
				if sum != 0 {
					t.Errorf("pos %d price %d qty %d: entries sum to %d", pos, price, qty, sum)
				}
			}
		}
	}
}
