package scenario

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Kinds of entity ids, stored in byte 8 of AccountID and MarketID results.
const (
	kindAccount byte = 1
	kindMarket  byte = 2
)

// TotalAccounts returns the number of accounts over all groups.
func (s *Scenario) TotalAccounts() int {
	starts := s.streamPlan().groupStarts
	return starts[len(starts)-1]
}

// TotalDeposits returns the sum of all account balances, in cents. Parse rejects scenarios
// whose sum would overflow int64.
func (s *Scenario) TotalDeposits() int64 {
	return s.streamPlan().deposits
}

// AccountBalance returns the deposit of account i, in cents.
func (s *Scenario) AccountBalance(i int) int64 {
	return s.Accounts[s.groupOf(i)].Balance
}

// AccountName returns the name of account i: its group's name and its 1-based number within
// the group, such as traders-3.
func (s *Scenario) AccountName(i int) string {
	g := s.groupOf(i)
	return fmt.Sprintf("%s-%d", s.Accounts[g].Name, i-s.streamPlan().groupStarts[g]+1)
}

// AccountGroupOf returns the name of account i's group.
func (s *Scenario) AccountGroupOf(i int) string {
	return s.Accounts[s.groupOf(i)].Name
}

// groupOf returns the index of account i's group. It panics if i is out of range.
func (s *Scenario) groupOf(i int) int {
	starts := s.streamPlan().groupStarts
	if i < 0 || i >= starts[len(starts)-1] {
		panic(fmt.Sprintf("scenario %q: account %d is outside 0..%d", s.Name, i,
			starts[len(starts)-1]-1))
	}
	// The first start above i belongs to the group after i's.
	next, _ := slices.BinarySearch(starts, i+1)
	return next - 1
}

// AccountID returns the id of account i. It panics if i is out of range.
//
// Account and market ids are version 8 UUIDs, so they never equal an order id (version 4).
// Bytes 0-7 come from the seed, byte 8 holds the variant and the kind (account or market),
// and bytes 9-15 hold the index, so the ids of one scenario are all distinct.
func (s *Scenario) AccountID(i int) uuid.UUID {
	s.groupOf(i)
	return entityID(s.Seed, domainAccountID, kindAccount, uint64(i))
}

// MarketID returns the id of market m, counted from 0. It panics if m is out of range.
func (s *Scenario) MarketID(m int) uuid.UUID {
	s.checkMarket(m)
	return entityID(s.Seed, domainMarketID, kindMarket, uint64(m))
}

// MarketName returns the name of market m, counted from 0: market-1 for m = 0, matching the
// 1-based market numbers of the scenario file.
func (s *Scenario) MarketName(m int) string {
	s.checkMarket(m)
	return fmt.Sprintf("market-%d", m+1)
}

// MarketOutcome returns how market m resolves: Yes or No. With Outcome Drawn, each market's
// outcome is drawn from the seed. It panics if m is out of range.
func (s *Scenario) MarketOutcome(m int) Outcome {
	s.checkMarket(m)
	if s.Outcome == Yes || s.Outcome == No {
		return s.Outcome
	}
	r := newSource(streamKey(s.Seed, domainOutcome), uint64(m))
	if r.below(2) == 1 {
		return Yes
	}
	return No
}

// checkMarket panics if m is not a market index of s.
func (s *Scenario) checkMarket(m int) {
	if m < 0 || m >= s.Markets {
		panic(fmt.Sprintf("scenario %q: market %d is outside 0..%d", s.Name, m, s.Markets-1))
	}
}

// entityID lays out a version 8 UUID from the seed, the kind and the index. The index must be
// below 2^56, because 7 bytes hold it.
func entityID(seed, domain uint64, kind byte, index uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], streamKey(seed, domain))
	binary.BigEndian.PutUint64(id[8:16], index)
	id[6] = id[6]&0x0f | 0x80
	id[8] = 0x80 | kind
	return id
}
