package verify

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/engine"
	"parity/scenario"
	"parity/schema"
)

// replayedOrder is one committed order as the replay needs it.
type replayedOrder struct {
	taker    engine.Taker
	bookSeq  int64
	versions map[uuid.UUID]int64

	// The model's fills of the order.
	fills  int
	filled int64
	digest uint64
}

var replayMatches = Check{
	Name: "replay-matches",
	Description: "replaying the committed orders in commit order through the in-memory engine " +
		"reproduces the database's trades, orders, positions and balances",
	run: func(ctx context.Context, db DB, ns schema.Namespace, exp Expect, r *Result) error {
		rp := &replay{db: db, ns: ns, r: r, model: engine.NewMemory(), flagged: map[string]bool{}}
		if err := rp.run(ctx, exp); err != nil {
			return err
		}
		r.Expected = "the same trades, order states, positions and balances as the database"
		r.Found = fmt.Sprintf("%d of %d replayed orders, accounts and positions differ", r.Violations, r.Checked)
		return nil
	},
}

// replay replays a namespace's committed orders through the in-memory engine.
//
// The commit order is rebuilt from what the orders wrote: every order bumps its market's
// version, which is its BookSeq, and records the version it left on every account row it
// wrote. Orders that touched the same market or the same account are ordered by those
// versions. Any order consistent with all of them is a serial order of the run, because
// every row a matching decision reads is also written by it. Orders are kept in memory in a
// compact form; trades, order states, positions and balances are streamed for comparison.
type replay struct {
	db    DB
	ns    schema.Namespace
	r     *Result
	model *engine.Memory

	orders []replayedOrder
	index  map[uuid.UUID]int
	// flagged holds what witness has counted, so that nothing is counted twice.
	flagged map[string]bool
}

func (rp *replay) run(ctx context.Context, exp Expect) error {
	if err := rp.deposit(ctx); err != nil {
		return err
	}
	if err := rp.loadOrders(ctx); err != nil {
		return err
	}
	order, stuck := rp.commitOrder()
	for _, i := range stuck {
		o := rp.orders[i]
		rp.witness(Witness{Kind: "order", ID: o.taker.ID.String(),
			Name: fmt.Sprintf("seq %d: no serial order exists", o.taker.Seq)})
	}
	for _, i := range order {
		if err := rp.place(ctx, i); err != nil {
			return err
		}
	}
	rp.r.Checked += int64(len(rp.orders))
	if err := rp.compareTrades(ctx); err != nil {
		return err
	}
	if err := rp.compareOrders(ctx); err != nil {
		return err
	}
	if err := rp.settle(ctx); err != nil {
		return err
	}
	return rp.compareBooks(ctx)
}

// witness counts an order, account or position that differs from the replay, once however
// many of its figures differ, and keeps the first MaxWitnesses.
func (rp *replay) witness(w Witness) {
	key := w.Kind + " " + w.ID + " " + w.Name
	if w.Kind == "order" {
		key = w.Kind + " " + w.ID
	}
	if rp.flagged[key] {
		return
	}
	rp.flagged[key] = true
	rp.r.Violations++
	if len(rp.r.Witnesses) < MaxWitnesses {
		rp.r.Witnesses = append(rp.r.Witnesses, w)
	}
}

func (rp *replay) deposit(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand("SELECT id, deposited FROM {accounts}", rp.ns))
	if err != nil {
		return err
	}
	var id uuid.UUID
	var deposited int64
	_, err = pgx.ForEachRow(rows, []any{&id, &deposited}, func() error {
		rp.model.Deposit(id, deposited)
		return nil
	})
	return err
}

func (rp *replay) loadOrders(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand(`SELECT id, seq, market_id, account_id, side, price,
		quantity, book_seq, account_versions FROM {orders} ORDER BY seq, id`, rp.ns))
	if err != nil {
		return err
	}
	rp.index = map[uuid.UUID]int{}
	var o replayedOrder
	var side, versions string
	_, err = pgx.ForEachRow(rows, []any{&o.taker.ID, &o.taker.Seq, &o.taker.Market,
		&o.taker.Account, &side, &o.taker.Price, &o.taker.Quantity, &o.bookSeq, &versions}, func() error {
		o.taker.Side = scenario.Side(side)
		v, err := engine.DecodeVersions(versions)
		if err != nil {
			return fmt.Errorf("order %s: %w", o.taker.ID, err)
		}
		o.versions = v
		rp.index[o.taker.ID] = len(rp.orders)
		rp.orders = append(rp.orders, o)
		return nil
	})
	return err
}

// commitOrder sorts the orders topologically by their market and account versions, taking
// the lowest stream position first among the orders that are ready. It also returns the
// orders left over when the versions contradict each other.
func (rp *replay) commitOrder() (order, stuck []int) {
	type marketKey uuid.UUID
	type accountKey uuid.UUID
	chains := map[any][]int{}
	for i, o := range rp.orders {
		chains[marketKey(o.taker.Market)] = append(chains[marketKey(o.taker.Market)], i)
		for account := range o.versions {
			chains[accountKey(account)] = append(chains[accountKey(account)], i)
		}
	}
	indegree := make([]int, len(rp.orders))
	next := make([][]int, len(rp.orders))
	for key, chain := range chains {
		rank := func(i int) int64 { return rp.orders[i].bookSeq }
		if account, ok := key.(accountKey); ok {
			rank = func(i int) int64 { return rp.orders[i].versions[uuid.UUID(account)] }
		}
		slices.SortStableFunc(chain, func(a, b int) int { return cmp.Compare(rank(a), rank(b)) })
		for k := 1; k < len(chain); k++ {
			// Equal versions give no order: two orders cannot both have written the same
			// version of a row, and the replay will show what went wrong.
			if rank(chain[k-1]) < rank(chain[k]) {
				next[chain[k-1]] = append(next[chain[k-1]], chain[k])
				indegree[chain[k]]++
			}
		}
	}
	ready := &seqHeap{orders: rp.orders}
	for i, d := range indegree {
		if d == 0 {
			heap.Push(ready, i)
		}
	}
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, i)
		for _, j := range next[i] {
			if indegree[j]--; indegree[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	for i, d := range indegree {
		if d > 0 {
			stuck = append(stuck, i)
		}
	}
	return order, stuck
}

// seqHeap is a min-heap of order indexes by stream position.
type seqHeap struct {
	orders []replayedOrder
	items  []int
}

func (h *seqHeap) Len() int { return len(h.items) }
func (h *seqHeap) Less(i, j int) bool {
	return h.orders[h.items[i]].taker.Seq < h.orders[h.items[j]].taker.Seq
}
func (h *seqHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *seqHeap) Push(x any)    { h.items = append(h.items, x.(int)) }
func (h *seqHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func (rp *replay) place(ctx context.Context, i int) error {
	o := &rp.orders[i]
	// NOTE: the replay assumes the run used engine.DefaultMaxFills, as every run of the
	// parity command does; an engine built with another MaxFills would not replay exactly.
	m, err := rp.model.Place(ctx, o.taker, engine.DefaultMaxFills)
	if err != nil {
		return fmt.Errorf("replay order %s: %w", o.taker.ID, err)
	}
	d := newDigest()
	for _, f := range m.Fills {
		d.add(f.Maker.ID, f.Price, f.Quantity)
	}
	o.fills, o.filled, o.digest = len(m.Fills), m.Filled, d.sum()
	return nil
}

// fillDigest hashes a sequence of fills: maker, price and quantity, in fill order.
type fillDigest struct {
	h hash.Hash64
}

func newDigest() *fillDigest { return &fillDigest{h: fnv.New64a()} }

func (d *fillDigest) add(maker uuid.UUID, price, qty int64) {
	var b [32]byte
	copy(b[:16], maker[:])
	binary.BigEndian.PutUint64(b[16:], uint64(price))
	binary.BigEndian.PutUint64(b[24:], uint64(qty))
	_, _ = d.h.Write(b[:]) // hash writes never fail
}

func (d *fillDigest) sum() uint64 { return d.h.Sum64() }

// compareTrades streams the database's trades by taker and compares each order's fills with
// the model's.
func (rp *replay) compareTrades(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand(`SELECT taker_order_id, maker_order_id, price, quantity
		FROM {trades} ORDER BY taker_order_id, fill_index`, rp.ns))
	if err != nil {
		return err
	}
	seen := make([]bool, len(rp.orders))
	var current uuid.UUID
	var d *fillDigest
	var fills int
	var filled int64
	flush := func() {
		if d == nil {
			return
		}
		i, ok := rp.index[current]
		if !ok {
			rp.witness(Witness{Kind: "trade", ID: current.String(), Name: "taker order not in the database"})
			return
		}
		seen[i] = true
		rp.compareFills(i, fills, filled, d.sum())
	}
	var taker, maker uuid.UUID
	var price, qty int64
	_, err = pgx.ForEachRow(rows, []any{&taker, &maker, &price, &qty}, func() error {
		if d == nil || taker != current {
			flush()
			current, d, fills, filled = taker, newDigest(), 0, 0
		}
		d.add(maker, price, qty)
		fills++
		filled += qty
		return nil
	})
	if err != nil {
		return err
	}
	flush()
	for i := range rp.orders {
		if !seen[i] {
			rp.compareFills(i, 0, 0, newDigest().sum())
		}
	}
	return nil
}

func (rp *replay) compareFills(i, fills int, filled int64, digest uint64) {
	o := rp.orders[i]
	if o.fills == fills && o.filled == filled && o.digest == digest {
		return
	}
	rp.witness(Witness{Kind: "order", ID: o.taker.ID.String(),
		Name: fmt.Sprintf("seq %d: fills differ from the replay", o.taker.Seq),
		Values: []Value{{"database fills", int64(fills)}, {"replay fills", int64(o.fills)},
			{"database filled", filled}, {"replay filled", o.filled}}})
}

// compareOrders streams the orders' final states and compares them with the model's.
func (rp *replay) compareOrders(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand(`SELECT id, filled, status, COALESCE(cancel_reason, '')
		FROM {orders}`, rp.ns))
	if err != nil {
		return err
	}
	var id uuid.UUID
	var filled int64
	var status, reason string
	_, err = pgx.ForEachRow(rows, []any{&id, &filled, &status, &reason}, func() error {
		m := rp.model.Orders[id]
		if m == nil || (m.Filled == filled && m.Status == status && m.Reason == reason) {
			return nil
		}
		rp.witness(Witness{Kind: "order", ID: id.String(),
			Name:   fmt.Sprintf("seq %d: database %s/%s, replay %s/%s", m.Seq, status, reason, m.Status, m.Reason),
			Values: []Value{{"database filled", filled}, {"replay filled", m.Filled}}})
		return nil
	})
	return err
}

// settle pays out the model's positions in every market the database has settled.
func (rp *replay) settle(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand(`SELECT id, outcome FROM {markets}
		WHERE status = 'settled' AND outcome IS NOT NULL`, rp.ns))
	if err != nil {
		return err
	}
	var market uuid.UUID
	var outcome string
	_, err = pgx.ForEachRow(rows, []any{&market, &outcome}, func() error {
		for account, qty := range rp.model.Positions[market] {
			for _, e := range engine.SettlementEntries(account, qty, scenario.Outcome(outcome)) {
				c := rp.model.Cash[e.Account]
				switch {
				case c == nil:
				case e.Bucket == schema.BucketFree:
					c.Free += e.Amount
				case e.Bucket == schema.BucketLocked:
					c.Locked += e.Amount
				}
			}
		}
		return nil
	})
	return err
}

// compareBooks streams balances and positions and compares them with the model's.
func (rp *replay) compareBooks(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand("SELECT id, name, free, locked FROM {accounts}", rp.ns))
	if err != nil {
		return err
	}
	var id uuid.UUID
	var name string
	var free, locked int64
	_, err = pgx.ForEachRow(rows, []any{&id, &name, &free, &locked}, func() error {
		rp.r.Checked++
		c := rp.model.Cash[id]
		if c != nil && c.Free == free && c.Locked == locked {
			return nil
		}
		var model engine.CashChange
		if c != nil {
			model = *c
		}
		rp.witness(Witness{Kind: "account", ID: id.String(), Name: name, Values: []Value{
			{"free", free}, {"replay free", model.Free}, {"locked", locked}, {"replay locked", model.Locked}}})
		return nil
	})
	if err != nil {
		return err
	}
	return rp.comparePositions(ctx)
}

func (rp *replay) comparePositions(ctx context.Context) error {
	rows, err := rp.db.Query(ctx, expand("SELECT account_id, market_id, quantity FROM {positions}", rp.ns))
	if err != nil {
		return err
	}
	seen := map[[2]uuid.UUID]bool{}
	var account, market uuid.UUID
	var qty int64
	_, err = pgx.ForEachRow(rows, []any{&account, &market, &qty}, func() error {
		rp.r.Checked++
		seen[[2]uuid.UUID{account, market}] = true
		if want := rp.model.Positions[market][account]; want != qty {
			rp.witness(Witness{Kind: "position", ID: account.String(), Name: "in market " + market.String(),
				Values: []Value{{"position", qty}, {"replay position", want}}})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for market, byAccount := range rp.model.Positions {
		for account, want := range byAccount {
			if want != 0 && !seen[[2]uuid.UUID{account, market}] {
				rp.witness(Witness{Kind: "position", ID: account.String(), Name: "in market " + market.String(),
					Values: []Value{{"position", 0}, {"replay position", want}}})
			}
		}
	}
	return nil
}
