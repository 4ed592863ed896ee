package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"parity/schema"
)

// Entry is one ledger entry: an amount of cents added to one bucket. Account is uuid.Nil
// for the clearing bucket, which belongs to a market.
type Entry struct {
	Account uuid.UUID
	Bucket  string
	Amount  int64
}

// FillEntries returns the ledger entries of a fill: the net change of each side's free and
// locked cash, leaving out zero amounts. They always sum to zero.
func FillEntries(f Fill) []Entry {
	all := []Entry{
		{f.Buyer, schema.BucketFree, f.BuyerCash.Free},
		{f.Buyer, schema.BucketLocked, f.BuyerCash.Locked},
		{f.Seller, schema.BucketFree, f.SellerCash.Free},
		{f.Seller, schema.BucketLocked, f.SellerCash.Locked},
	}
	entries := all[:0]
	for _, e := range all {
		if e.Amount != 0 {
			entries = append(entries, e)
		}
	}
	return entries
}

// Finish implements Book: it writes the order, its trades and their ledger journals, the
// resting orders it filled or cancelled, and the positions, in one round trip.
func (b *sqlBook) Finish(ctx context.Context, t Taker, m *Match) error {
	batch := &pgx.Batch{}
	b.queueOrder(batch, t, m)
	for i, f := range m.Fills {
		b.queueFill(batch, t, i, f)
	}
	for _, c := range m.Cancelled {
		batch.Queue(fmt.Sprintf(`UPDATE %s SET status = $2, cancel_reason = $3
			WHERE id = $1 AND status = $4`, b.ns.Table(schema.OrdersTable)),
			c.Order.ID, schema.StatusCancelled, c.Reason, schema.StatusOpen).Exec(expectOne(c.Order.ID))
	}
	for account, delta := range m.Positions {
		if delta == 0 {
			continue
		}
		batch.Queue(fmt.Sprintf(`INSERT INTO %[1]s AS p (account_id, market_id, quantity, settled)
			VALUES ($1, $2, $3, false) ON CONFLICT (account_id, market_id)
			DO UPDATE SET quantity = p.quantity + EXCLUDED.quantity`,
			b.ns.Table(schema.PositionsTable)), account, t.Market, delta)
	}
	if b.ns.Variant.SharedCounter && len(m.Fills) > 0 {
		batch.Queue(fmt.Sprintf("UPDATE %s SET fills = fills + $1 WHERE id = 1",
			b.ns.Table(schema.ExchangeTable)), len(m.Fills))
	}
	return b.sendChecked(ctx, batch)
}

func (b *sqlBook) queueOrder(batch *pgx.Batch, t Taker, m *Match) {
	var reason *string
	if m.Reason != "" {
		reason = &m.Reason
	}
	batch.Queue(fmt.Sprintf(`INSERT INTO %s (id, seq, market_id, account_id, side, price,
		quantity, filled, status, cancel_reason, book_seq, attempt, account_versions)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		b.ns.Table(schema.OrdersTable)), t.ID, t.Seq, t.Market, t.Account, string(t.Side),
		t.Price, t.Quantity, m.Filled, m.Status, reason, b.bookSeq, b.attempt,
		EncodeVersions(b.versions))
}

// splitEntries takes the deferred credits out of a fill's entries: what is left is the part
// of the journal that the order's own transaction writes.
func splitEntries(entries []Entry, credits []Credit) []Entry {
	net := map[[2]string]int64{}
	var order [][2]string
	for _, e := range entries {
		key := [2]string{e.Account.String(), e.Bucket}
		if _, ok := net[key]; !ok {
			order = append(order, key)
		}
		net[key] += e.Amount
	}
	for _, c := range credits {
		for _, part := range []Entry{{c.Account, schema.BucketFree, c.Change.Free},
			{c.Account, schema.BucketLocked, c.Change.Locked}} {
			key := [2]string{part.Account.String(), part.Bucket}
			if _, ok := net[key]; !ok {
				order = append(order, key)
			}
			net[key] -= part.Amount
		}
	}
	var out []Entry
	for _, key := range order {
		if net[key] != 0 {
			out = append(out, Entry{uuid.MustParse(key[0]), key[1], net[key]})
		}
	}
	return out
}

// EncodeVersions writes account row versions as "account:version" pairs sorted by account
// and joined by commas: a plain text column that every dialect stores.
func EncodeVersions(versions map[uuid.UUID]int64) string {
	pairs := make([]string, 0, len(versions))
	for account, v := range versions {
		pairs = append(pairs, account.String()+":"+strconv.FormatInt(v, 10))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// DecodeVersions reads what EncodeVersions wrote.
func DecodeVersions(s string) (map[uuid.UUID]int64, error) {
	versions := map[uuid.UUID]int64{}
	if s == "" {
		return versions, nil
	}
	for _, pair := range strings.Split(s, ",") {
		account, version, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("decode account versions: %q is not account:version", pair)
		}
		id, err := uuid.Parse(account)
		if err != nil {
			return nil, fmt.Errorf("decode account versions: %w", err)
		}
		v, err := strconv.ParseInt(version, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("decode account versions: %w", err)
		}
		versions[id] = v
	}
	return versions, nil
}

// queueFill queues the trade, its ledger journal and the update of the resting order. The
// update is conditional on the order still being open with enough left, and sendChecked
// turns a miss into ErrBookChanged.
func (b *sqlBook) queueFill(batch *pgx.Batch, t Taker, i int, f Fill) {
	trade := f.ID
	batch.Queue(fmt.Sprintf(`INSERT INTO %s (id, market_id, taker_order_id, maker_order_id,
		buyer_id, seller_id, price, quantity, book_seq, fill_index)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, b.ns.Table(schema.TradesTable)),
		trade, t.Market, t.ID, f.Maker.ID, f.Buyer, f.Seller, f.Price, f.Quantity,
		b.bookSeq, i)
	entries := FillEntries(f)
	if credits, ok := b.deferred[f.ID]; ok {
		entries = splitEntries(entries, credits)
	}
	for j, e := range entries {
		if b.faults.MissingEntry && i == 0 && j == 0 {
			continue
		}
		batch.Queue(fmt.Sprintf(`INSERT INTO %s (id, journal_id, kind, account_id, bucket,
			amount, market_id, order_id, trade_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			b.ns.Table(schema.LedgerTable)), uuid.New(), trade, schema.KindFill, e.Account,
			e.Bucket, e.Amount, t.Market, t.ID, trade)
	}
	batch.Queue(fmt.Sprintf(`UPDATE %s SET filled = filled + $2,
		status = CASE WHEN filled + $2 = quantity THEN $3 ELSE status END
		WHERE id = $1 AND status = $4 AND quantity - filled >= $2`,
		b.ns.Table(schema.OrdersTable)), f.Maker.ID, f.Quantity, schema.StatusFilled,
		schema.StatusOpen).Exec(expectOne(f.Maker.ID))
}

// expectOne returns a batch callback that turns an update of anything but exactly one
// resting order into ErrBookChanged.
func expectOne(order uuid.UUID) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("update resting order %s: %w", order, ErrBookChanged)
		}
		return nil
	}
}

func (b *sqlBook) sendChecked(ctx context.Context, batch *pgx.Batch) error {
	if err := b.tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record order %s: %w", b.taker.ID, err)
	}
	return nil
}
