package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/scenario"
	"parity/schema"
)

// ErrMarketClosed is returned when an order arrives for a market that is not open.
var ErrMarketClosed = errors.New("market is not open")

// ErrBookChanged is returned when a resting order changed between being read and being
// filled inside one transaction. The market row serializes every order in a market, so this
// means that something other than the engine wrote to the book.
var ErrBookChanged = errors.New("resting order changed during matching")

// pageSize is how many crossing resting orders one query reads.
const pageSize = 32

// sqlBook is a Book over the database, inside one transaction.
//
// Opening it bumps the market row's version. Every order in a market therefore writes that
// row first, which serializes matching per market under snapshot isolation: without it, two
// crossing orders placed at once could both rest without seeing each other, leaving the book
// crossed. Orders in different markets never touch the same market row.
type sqlBook struct {
	tx      pgx.Tx
	ns      schema.Namespace
	taker   Taker
	bookSeq int64
	attempt int
	faults  Faults

	page      []Resting
	next      int
	exhausted bool
	cursor    Resting
	positions map[uuid.UUID]int64
}

func openSQLBook(ctx context.Context, tx pgx.Tx, ns schema.Namespace, t Taker,
	attempt int, faults Faults) (*sqlBook, error) {
	b := &sqlBook{tx: tx, ns: ns, taker: t, attempt: attempt, faults: faults,
		positions: map[uuid.UUID]int64{}}
	err := tx.QueryRow(ctx, fmt.Sprintf(`UPDATE %s SET version = version + 1
		WHERE id = $1 AND status = $2 RETURNING version`, ns.Table(schema.MarketsTable)),
		t.Market, schema.MarketOpen).Scan(&b.bookSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("place order %s: %w: %s", t.ID, ErrMarketClosed, t.Market)
	}
	if err != nil {
		return nil, fmt.Errorf("lock market %s: %w", t.Market, err)
	}
	b.cursor = Resting{Price: 0, BookSeq: -1}
	if t.Side == scenario.Sell {
		b.cursor.Price = ContractValue + 1
	}
	return b, nil
}

// Next implements Book.
func (b *sqlBook) Next(ctx context.Context) (Resting, bool, error) {
	if b.next == len(b.page) {
		if b.exhausted {
			return Resting{}, false, nil
		}
		if err := b.readPage(ctx); err != nil {
			return Resting{}, false, err
		}
		if len(b.page) == 0 {
			return Resting{}, false, nil
		}
	}
	r := b.page[b.next]
	b.next++
	return r, true, nil
}

// readPage reads the next resting orders that cross the taker, after the cursor in
// price-time priority, with their accounts' positions; the first page also carries the
// taker's own position, which saves a round trip.
func (b *sqlBook) readPage(ctx context.Context) error {
	restingSide, order, after := scenario.Sell, "o.price ASC", ">"
	crossing := "o.price <= $3"
	if b.taker.Side == scenario.Sell {
		restingSide, order, after = scenario.Buy, "o.price DESC", "<"
		crossing = "o.price >= $3"
	}
	sql := fmt.Sprintf(`SELECT o.id, o.account_id, o.price, o.quantity - o.filled, o.book_seq,
		COALESCE(p.quantity, 0),
		COALESCE((SELECT quantity FROM %[2]s WHERE account_id = $6 AND market_id = $1), 0)
		FROM %[1]s o LEFT JOIN %[2]s p ON p.account_id = o.account_id AND p.market_id = o.market_id
		WHERE o.market_id = $1 AND o.side = $2 AND o.status = 'open' AND %[3]s
		AND (o.price %[4]s $4 OR (o.price = $4 AND o.book_seq > $5))
		ORDER BY %[5]s, o.book_seq ASC LIMIT %[6]d`,
		b.ns.Table(schema.OrdersTable), b.ns.Table(schema.PositionsTable),
		crossing, after, order, pageSize)
	rows, err := b.tx.Query(ctx, sql, b.taker.Market, restingSide, b.taker.Price,
		b.cursor.Price, b.cursor.BookSeq, b.taker.Account)
	if err != nil {
		return fmt.Errorf("read book: %w", err)
	}
	b.page, b.next = b.page[:0], 0
	for rows.Next() {
		var r Resting
		var makerPos, takerPos int64
		if err := rows.Scan(&r.ID, &r.Account, &r.Price, &r.Remaining, &r.BookSeq,
			&makerPos, &takerPos); err != nil {
			rows.Close()
			return fmt.Errorf("read book: %w", err)
		}
		b.positions[r.Account] = makerPos
		b.positions[b.taker.Account] = takerPos
		b.page = append(b.page, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read book: %w", err)
	}
	b.exhausted = len(b.page) < pageSize
	if len(b.page) > 0 {
		b.cursor = b.page[len(b.page)-1]
	}
	return nil
}

// Position implements Book. Matching asks only for accounts that Next has returned, and
// for the taker after at least one resting order, so the positions are already loaded.
func (b *sqlBook) Position(ctx context.Context, account uuid.UUID) (int64, error) {
	p, ok := b.positions[account]
	if !ok {
		return 0, fmt.Errorf("position of account %s: not loaded with the book", account)
	}
	return p, nil
}

// Fund implements Book: a conditional update per side, sent together. When only one side
// can pay, its update is reversed in the same transaction, because DSQL has no savepoints
// to roll back to.
func (b *sqlBook) Fund(ctx context.Context, f Fill) (Funding, error) {
	buyerOK, sellerOK, err := b.moveCash(ctx, f.Buyer, f.BuyerCash, f.Seller, f.SellerCash)
	if err != nil {
		return 0, err
	}
	switch {
	case buyerOK && sellerOK:
		return Funded, nil
	case buyerOK:
		return SellerUnfunded, b.reverse(ctx, f.Buyer, f.BuyerCash)
	case sellerOK:
		return BuyerUnfunded, b.reverse(ctx, f.Seller, f.SellerCash)
	default:
		return BuyerUnfunded, nil
	}
}

func (b *sqlBook) moveCash(ctx context.Context, buyer uuid.UUID, buyerCash CashChange,
	seller uuid.UUID, sellerCash CashChange) (bool, bool, error) {
	sql := fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
		version = version + 1 WHERE id = $1 AND free >= $4`, b.ns.Table(schema.AccountsTable))
	if b.faults.UnconditionalDebit {
		sql = fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
			version = version + 1 WHERE id = $1 AND $4::bigint IS NOT NULL`,
			b.ns.Table(schema.AccountsTable))
	}
	batch := &pgx.Batch{}
	batch.Queue(sql, buyer, buyerCash.Free, buyerCash.Locked, buyerCash.Cost())
	batch.Queue(sql, seller, sellerCash.Free, sellerCash.Locked, sellerCash.Cost())
	br := b.tx.SendBatch(ctx, batch)
	buyerTag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return false, false, fmt.Errorf("debit buyer %s: %w", buyer, err)
	}
	sellerTag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return false, false, fmt.Errorf("debit seller %s: %w", seller, err)
	}
	if err := br.Close(); err != nil {
		return false, false, fmt.Errorf("move cash: %w", err)
	}
	return buyerTag.RowsAffected() == 1, sellerTag.RowsAffected() == 1, nil
}

func (b *sqlBook) reverse(ctx context.Context, account uuid.UUID, c CashChange) error {
	_, err := b.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET free = free - $2, locked = locked - $3,
		version = version + 1 WHERE id = $1`, b.ns.Table(schema.AccountsTable)),
		account, c.Free, c.Locked)
	if err != nil {
		return fmt.Errorf("reverse cash of account %s: %w", account, err)
	}
	return nil
}
