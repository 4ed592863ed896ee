package engine

import (
	"context"
	"fmt"

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
		quantity, filled, status, cancel_reason, book_seq, attempt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		b.ns.Table(schema.OrdersTable)), t.ID, t.Seq, t.Market, t.Account, string(t.Side),
		t.Price, t.Quantity, m.Filled, m.Status, reason, b.bookSeq, b.attempt)
}

// queueFill queues the trade, its ledger journal and the update of the resting order. The
// update is conditional on the order still being open with enough left, and sendChecked
// turns a miss into ErrBookChanged.
func (b *sqlBook) queueFill(batch *pgx.Batch, t Taker, i int, f Fill) {
	trade := uuid.New()
	batch.Queue(fmt.Sprintf(`INSERT INTO %s (id, market_id, taker_order_id, maker_order_id,
		buyer_id, seller_id, price, quantity, book_seq, fill_index)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, b.ns.Table(schema.TradesTable)),
		trade, t.Market, t.ID, f.Maker.ID, f.Buyer, f.Seller, f.Price, f.Quantity,
		b.bookSeq, i)
	for j, e := range FillEntries(f) {
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
