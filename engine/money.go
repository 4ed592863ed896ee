package engine

// ContractValue is the payout of one winning contract at settlement, in cents. It is also the
// collateral locked for each short contract while its market is open.
const ContractValue = 100

// CashChange is the change a fill makes to one account's cash, in cents. Free + Locked is
// the account's total gain, and a negative Free is the amount it must be able to pay.
type CashChange struct {
	Free   int64
	Locked int64
}

// Cost returns the free cash the change needs: the amount the account's free balance must at
// least hold for the change to leave it non-negative. It is zero when the account gains.
func (c CashChange) Cost() int64 {
	return max(0, -c.Free)
}

// BuyerChange returns the cash change of buying qty contracts at price cents each for an
// account whose position in the market is pos. A buyer who is short closes short contracts
// first, and each closed contract releases its collateral.
func BuyerChange(pos, price, qty int64) CashChange {
	closed := min(qty, max(0, -pos))
	return CashChange{
		Free:   -price*qty + ContractValue*closed,
		Locked: -ContractValue * closed,
	}
}

// SellerChange returns the cash change of selling qty contracts at price cents each for an
// account whose position in the market is pos. Contracts beyond a long position open or
// extend a short, and each needs ContractValue cents of collateral, so a new short contract
// costs the seller ContractValue - price of free cash.
func SellerChange(pos, price, qty int64) CashChange {
	opened := qty - min(qty, max(0, pos))
	return CashChange{
		Free:   price*qty - ContractValue*opened,
		Locked: ContractValue * opened,
	}
}

// Collateral returns the cash locked for a position of pos contracts in an open market.
func Collateral(pos int64) int64 {
	return ContractValue * max(0, -pos)
}
