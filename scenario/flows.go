package scenario

import (
	"fmt"
	"math"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// validateGroups checks the account groups of a scenario and that their deposits add up
// within int64.
func (v *validator) validateGroups(raw *rawScenario) ([]AccountGroup, error) {
	list := raw.Accounts
	if len(list.items) == 0 {
		return nil, v.errorf(orNode(list.node, raw.node), "accounts", "%s; add at least one "+
			"account group, such as {name: traders, count: 10, balance: 100000}",
			missingOrEmpty(list.node))
	}

	groups := make([]AccountGroup, 0, len(list.items))
	firstWithName := make(map[string]string)
	var deposits int64
	for i, g := range list.items {
		key := fmt.Sprintf("accounts[%d]", i)
		g.node = entryNode(g.node, list.node, i)
		group, err := v.validateGroup(g, key)
		if err != nil {
			return nil, err
		}
		if first, ok := firstWithName[group.Name]; ok {
			return nil, v.errorf(g.Name.node, key+".name",
				"%q is already the name of %s; group names must be unique", group.Name, first)
		}
		firstWithName[group.Name] = key

		// Each group's deposits stay below 10^18 because of the limits on count and balance,
		// so only the running sum can overflow.
		groupDeposits := int64(group.Count) * group.Balance
		if deposits > math.MaxInt64-groupDeposits {
			return nil, v.errorf(g.Balance.node, key+".balance", "the deposits of all groups "+
				"add up to more than %d cents; lower the counts or balances", int64(math.MaxInt64))
		}
		deposits += groupDeposits
		groups = append(groups, group)
	}
	return groups, nil
}

// validateGroup checks one account group. key is its path, such as accounts[0].
func (v *validator) validateGroup(g rawGroup, key string) (AccountGroup, error) {
	if !g.Name.set() {
		return AccountGroup{}, v.errorf(g.node, key+".name",
			"missing; every account group needs a name, such as name: traders")
	}
	if message := checkName(g.Name.value); message != "" {
		return AccountGroup{}, v.errorf(g.Name.node, key+".name", "%s", message)
	}
	count, err := v.requiredInt(g.Count, g.node, key+".count", 1, maxGroupSize,
		" (accounts in the group)")
	if err != nil {
		return AccountGroup{}, err
	}
	balance, err := v.requiredInt(g.Balance, g.node, key+".balance", 0, maxBalance,
		" (cents deposited in each account)")
	if err != nil {
		return AccountGroup{}, err
	}
	return AccountGroup{Name: g.Name.value, Count: int(count), Balance: balance}, nil
}

// requiredInt returns the value of a key that must be set and lie within min..max. parent
// locates the error when the key is missing.
func (v *validator) requiredInt(s scalar[int64], parent ast.Node, key string, min, max int64,
	meaning string) (int64, error) {
	if !s.set() {
		return 0, v.errorf(parent, key, "missing; set a whole number from %d to %d%s",
			min, max, meaning)
	}
	if s.value < min || s.value > max {
		return 0, v.errorf(s.node, key, "%s", outside(s.value, min, max, meaning))
	}
	return s.value, nil
}

// orNode returns node, or fallback when node is nil.
func orNode(node, fallback ast.Node) ast.Node {
	if node == nil {
		return fallback
	}
	return node
}

// validateFlows checks the order flows of a scenario against its groups and market count.
func (v *validator) validateFlows(raw *rawScenario, groups []AccountGroup,
	markets int) ([]Flow, error) {
	list := raw.Flows
	if len(list.items) == 0 {
		return nil, v.errorf(orNode(list.node, raw.node), "flows", "%s; add at least one "+
			"order flow, such as {count: 100, group: traders, side: buy, price: 50, quantity: 1}",
			missingOrEmpty(list.node))
	}

	flows := make([]Flow, 0, len(list.items))
	var total int64
	for i, f := range list.items {
		key := fmt.Sprintf("flows[%d]", i)
		f.node = entryNode(f.node, list.node, i)
		flow, err := v.validateFlow(f, key, groups, markets)
		if err != nil {
			return nil, err
		}
		if flow.Count > maxTotalOrders-total {
			return nil, v.errorf(f.Count.node, key+".count", "the flows add up to %d orders; "+
				"the maximum is %d", total+flow.Count, maxTotalOrders)
		}
		total += flow.Count
		flows = append(flows, flow)
	}
	return flows, nil
}

// validateFlow checks one order flow. key is its path, such as flows[0].
func (v *validator) validateFlow(f rawFlow, key string, groups []AccountGroup,
	markets int) (Flow, error) {
	var flow Flow
	var err error
	if flow.Count, err = v.requiredInt(f.Count, f.node, key+".count", 1, maxTotalOrders,
		" (orders in the flow)"); err != nil {
		return Flow{}, err
	}
	if flow.Group, err = v.flowGroup(f, key, groups); err != nil {
		return Flow{}, err
	}
	if flow.Side, err = v.flowSide(f, key); err != nil {
		return Flow{}, err
	}
	if flow.Markets, err = v.flowMarkets(f, key, markets); err != nil {
		return Flow{}, err
	}
	if flow.Price, err = v.validateRange(f.Price, f.node, key+".price", minPrice, maxPrice,
		" (prices are whole cents from 1 to 99)", "50 or {min: 45, max: 70}"); err != nil {
		return Flow{}, err
	}
	if flow.Quantity, err = v.validateRange(f.Quantity, f.node, key+".quantity", 1, maxQuantity,
		" (contracts per order)", "5 or {min: 1, max: 10}"); err != nil {
		return Flow{}, err
	}
	return flow, nil
}

// flowGroup returns the flow's account group, which the scenario must define.
func (v *validator) flowGroup(f rawFlow, key string, groups []AccountGroup) (string, error) {
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	defined := strings.Join(names, ", ")
	if !f.Group.set() {
		return "", v.errorf(f.node, key+".group",
			"missing; name the account group that places the orders: %s", defined)
	}
	for _, name := range names {
		if name == f.Group.value {
			return name, nil
		}
	}
	return "", v.errorf(f.Group.node, key+".group",
		"%q is not an account group of this scenario; defined groups: %s", f.Group.value, defined)
}

// flowSide returns the flow's side. An empty side means each order's side is drawn.
func (v *validator) flowSide(f rawFlow, key string) (Side, error) {
	switch {
	case !f.Side.set(), f.Side.value == "either":
		return "", nil
	case f.Side.value == string(Buy), f.Side.value == string(Sell):
		return Side(f.Side.value), nil
	}
	return "", v.errorf(f.Side.node, key+".side", "%q is not a side; use buy, sell or either "+
		"(either draws each order's side from the seed)", f.Side.value)
}

// flowMarkets converts the flow's 1-based market numbers to 0-based indexes. Nil means every
// market.
func (v *validator) flowMarkets(f rawFlow, key string, markets int) ([]int, error) {
	list := f.Markets
	if list.node == nil {
		return nil, nil
	}
	if len(list.items) == 0 {
		return nil, v.errorf(list.node, key+".markets", "empty; list market numbers from 1 to "+
			"%d, or remove the key to use every market", markets)
	}

	indexes := make([]int, 0, len(list.items))
	firstAt := make(map[int64]int)
	for i, m := range list.items {
		itemKey := fmt.Sprintf("%s.markets[%d]", key, i)
		if !m.set() {
			return nil, v.errorf(entryNode(nil, list.node, i), itemKey, "null is not a market "+
				"number; list numbers from 1 to %d", markets)
		}
		if m.value < 1 || m.value > int64(markets) {
			return nil, v.errorf(m.node, itemKey, "market %d is outside 1..%d (markets are "+
				"numbered from 1, and this scenario has %d)", m.value, markets, markets)
		}
		if first, ok := firstAt[m.value]; ok {
			return nil, v.errorf(m.node, itemKey, "market %d is already listed at %s.markets[%d]; "+
				"list each market once", m.value, key, first)
		}
		firstAt[m.value] = i
		indexes = append(indexes, int(m.value-1))
	}
	return indexes, nil
}

// validateRange checks a price or quantity. key is its path, such as flows[0].price, and
// example shows both forms in the message for a missing key.
func (v *validator) validateRange(r rawRange, parent ast.Node, key string, min, max int64,
	meaning, example string) (Range, error) {
	if r.node == nil {
		return Range{}, v.errorf(parent, key, "missing; set a single value or a range, such as %s",
			example)
	}
	if r.single {
		n, err := v.requiredInt(r.Min, r.node, key, min, max, meaning)
		return Range{Min: n, Max: n}, err
	}

	lo, err := v.requiredInt(r.Min, r.node, key+".min", min, max, meaning)
	if err != nil {
		return Range{}, err
	}
	hi, err := v.requiredInt(r.Max, r.node, key+".max", min, max, meaning)
	if err != nil {
		return Range{}, err
	}
	if lo > hi {
		return Range{}, v.errorf(r.Max.node, key+".max", "%d is less than min %d; "+
			"swap them or raise max", hi, lo)
	}
	return Range{Min: lo, Max: hi}, nil
}
