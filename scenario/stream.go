package scenario

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/google/uuid"
)

// The order stream is a pure function of the seed and the sequence number, so any worker can
// compute any order without shared state:
//
//  1. A keyed permutation of 0..TotalOrders-1 maps seq to a position. Positions are dealt to
//     the flows in blocks by cumulative count, so each flow gets exactly its Count orders,
//     and the permutation interleaves them.
//  2. A PCG generator seeded from (seed, seq) draws the order's id, account, market, side,
//     price and quantity, in that order.
//
// Every random stream derived from the seed has its own domain constant, so that no two of
// them share a generator seed. Changing a domain, the draw order or the permutation changes
// every stream; the golden test in stream_test.go pins them.
const (
	domainShuffle uint64 = 1 + iota
	domainOrder
	domainOutcome
	domainAccountID
	domainMarketID
)

// plan holds the values that Order and the account helpers derive from a scenario. It is
// read-only once built, which makes those methods safe for concurrent use.
type plan struct {
	totalOrders int64
	// flowEnds[f] is one past the last position of flow f before shuffling.
	flowEnds []int64
	// flowGroups[f] is the index in Accounts of flow f's group.
	flowGroups []int
	// groupStarts[g] is the index of group g's first account. The extra last entry is the
	// number of accounts.
	groupStarts []int
	// deposits is the sum of all account balances, in cents.
	deposits int64
	shuffle  permutation
}

// newPlan derives the plan of s. It panics if a flow names a group that s does not define,
// which Parse rules out.
func newPlan(s *Scenario) *plan {
	p := &plan{groupStarts: make([]int, 0, len(s.Accounts)+1)}
	groupIndex := make(map[string]int, len(s.Accounts))
	start := 0
	for g, group := range s.Accounts {
		groupIndex[group.Name] = g
		p.groupStarts = append(p.groupStarts, start)
		start += group.Count
		p.deposits += int64(group.Count) * group.Balance
	}
	p.groupStarts = append(p.groupStarts, start)

	for f, flow := range s.Flows {
		g, ok := groupIndex[flow.Group]
		if !ok {
			panic(fmt.Sprintf("scenario %q: flow %d names undefined account group %q",
				s.Name, f, flow.Group))
		}
		p.totalOrders += flow.Count
		p.flowEnds = append(p.flowEnds, p.totalOrders)
		p.flowGroups = append(p.flowGroups, g)
	}
	p.shuffle = newPermutation(uint64(p.totalOrders), streamKey(s.Seed, domainShuffle))
	return p
}

// streamPlan returns the plan that Parse stored, or derives one for a Scenario built by hand.
func (s *Scenario) streamPlan() *plan {
	if s.plan != nil {
		return s.plan
	}
	return newPlan(s)
}

// TotalOrders returns the number of orders in the stream: the sum of the flows' counts.
func (s *Scenario) TotalOrders() int64 {
	return s.streamPlan().totalOrders
}

// Order returns order seq of the stream, for 0 <= seq < TotalOrders. The same seed and seq
// always give the same order, id included. Order is safe for concurrent use. On a Scenario
// from Parse it takes constant expected time and allocates nothing. Order panics if seq is
// out of range.
func (s *Scenario) Order(seq int64) Order {
	p := s.streamPlan()
	if seq < 0 || seq >= p.totalOrders {
		panic(fmt.Sprintf("scenario %q: order %d is outside 0..%d", s.Name, seq, p.totalOrders-1))
	}
	position := int64(p.shuffle.apply(uint64(seq)))
	f, _ := slices.BinarySearch(p.flowEnds, position+1)
	flow := &s.Flows[f]
	group := p.flowGroups[f]

	r := newSource(streamKey(s.Seed, domainOrder), uint64(seq))
	o := Order{Seq: seq, Flow: f, ID: r.uuidV4()}
	o.Account = p.groupStarts[group] + int(r.below(uint64(s.Accounts[group].Count)))
	if len(flow.Markets) > 0 {
		o.Market = flow.Markets[r.below(uint64(len(flow.Markets)))]
	} else {
		o.Market = int(r.below(uint64(s.Markets)))
	}
	o.Side = flow.Side
	if o.Side == "" {
		o.Side = Buy
		if r.below(2) == 1 {
			o.Side = Sell
		}
	}
	o.Price = r.between(flow.Price)
	o.Quantity = r.between(flow.Quantity)
	return o
}

// mix64 is the finalizer of SplitMix64: a bijection on uint64 that spreads every input bit
// over the whole output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// streamKey derives the key of one random stream from the scenario's seed.
func streamKey(seed, domain uint64) uint64 {
	return mix64(seed ^ mix64(domain))
}

// source draws the random values of one order, market or id.
type source struct {
	pcg rand.PCG
}

// newSource returns the generator for item index of the stream with the given key. Distinct
// indexes give distinct generator seeds, because mix64 is a bijection.
func newSource(key, index uint64) source {
	var r source
	r.pcg.Seed(key, mix64(index))
	return r
}

// below returns a uniform value in [0, n) for n > 0, by Lemire's multiply-and-reject method.
// It is written out, rather than taken from rand.Rand, so that the stream depends only on
// the PCG-DXSM output, which math/rand/v2 specifies.
func (r *source) below(n uint64) uint64 {
	hi, lo := bits.Mul64(r.pcg.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(r.pcg.Uint64(), n)
		}
	}
	return hi
}

// between returns a uniform value in rg.Min..rg.Max.
func (r *source) between(rg Range) int64 {
	return rg.Min + int64(r.below(uint64(rg.Max-rg.Min)+1))
}

// uuidV4 returns 122 random bits laid out as a version 4, RFC 9562 variant UUID.
func (r *source) uuidV4() uuid.UUID {
	var id uuid.UUID
	hi, lo := r.pcg.Uint64(), r.pcg.Uint64()
	for i := range 8 {
		id[i] = byte(hi >> (56 - 8*i))
		id[8+i] = byte(lo >> (56 - 8*i))
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// permutation is a keyed bijection on [0, n): a balanced Feistel network on the smallest
// even number of bits that covers n, restricted to [0, n) by cycle walking. Walking from a
// value below n must come back below n, because the value lies on a cycle of the Feistel
// permutation. The bit domain is less than 4n, so a walk takes fewer than 4 steps on average.
type permutation struct {
	n    uint64
	half uint
	mask uint64
	keys [feistelRounds]uint64
}

// feistelRounds is the number of Feistel rounds. It is twice the classic four, because the
// round function is a fast mixer rather than a random function, and a round costs only one
// mix64.
const feistelRounds = 8

// newPermutation returns the permutation of [0, n) for the given key.
func newPermutation(n, key uint64) permutation {
	width := bits.Len64(n - 1)
	width = max(width+width%2, 2)
	p := permutation{n: n, half: uint(width / 2)}
	p.mask = 1<<p.half - 1
	for i := range p.keys {
		p.keys[i] = mix64(key + uint64(i))
	}
	return p
}

// apply maps x in [0, n) to its place in [0, n).
func (p *permutation) apply(x uint64) uint64 {
	for {
		x = p.encrypt(x)
		if x < p.n {
			return x
		}
	}
}

// encrypt runs the Feistel network on x, a value of 2*half bits.
func (p *permutation) encrypt(x uint64) uint64 {
	left, right := x>>p.half, x&p.mask
	for _, k := range p.keys {
		left, right = right, left^(mix64(right^k)&p.mask)
	}
	return left<<p.half | right
}
