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

	// versions holds each account's row version after this transaction's last write to
	// it. The order row records them so that an audit can put orders in a serial order.
	versions map[uuid.UUID]int64
	// deferred holds, by trade, the credits that the split-fill sabotage moves out of the
	// order's transaction.
	deferred map[uuid.UUID][]Credit
}

func openSQLBook(ctx context.Context, tx pgx.Tx, ns schema.Namespace, t Taker,
	attempt int, faults Faults) (*sqlBook, error) {
	b := &sqlBook{tx: tx, ns: ns, taker: t, attempt: attempt, faults: faults,
		positions: map[uuid.UUID]int64{}, versions: map[uuid.UUID]int64{},
		deferred: map[uuid.UUID][]Credit{}}
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
// price-time priority, with their accounts' positions. Each page also carries the taker's
// own position, which saves a round trip.
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

// Position implements Book. Matching requests only accounts that Next has returned, and
// the taker after at least one resting order, so the positions are already loaded.
func (b *sqlBook) Position(ctx context.Context, account uuid.UUID) (int64, error) {
	p, ok := b.positions[account]
	if !ok {
		return 0, fmt.Errorf("position of account %s: not loaded with the book", account)
	}
	return p, nil
}

// cashMove is one side's part of a fill.
type cashMove struct {
	account uuid.UUID
	change  CashChange
	buyer   bool
}

// Fund implements Book with a conditional update per side, sent together: an update that
// changes no row means that side cannot pay. When a side cannot pay, the other side's update
// is reversed in the same transaction, because DSQL has no savepoints to roll back to, and
// the unpaying account's row is written anyway (its version bumped). That write turns the
// balance read behind the decision into a write, so that under snapshot isolation a
// concurrent change to the balance conflicts with the skip instead of passing unseen.
func (b *sqlBook) Fund(ctx context.Context, f Fill) (Funding, error) {
	moves := []cashMove{{f.Buyer, f.BuyerCash, true}, {f.Seller, f.SellerCash, false}}
	if b.faults.SplitFill {
		moves = b.splitMoves(f)
	}
	funded, err := b.applyMoves(ctx, moves)
	if err != nil {
		return 0, err
	}
	result := Funded
	for i, m := range moves {
		switch {
		case funded[i]:
		case m.buyer:
			result = BuyerUnfunded
		case result == Funded:
			result = SellerUnfunded
		}
	}
	if result == Funded {
		return Funded, nil
	}
	delete(b.deferred, f.ID)
	return result, b.undoMoves(ctx, moves, funded)
}

// applyMoves applies each move if its account can pay, and reports which could.
func (b *sqlBook) applyMoves(ctx context.Context, moves []cashMove) ([]bool, error) {
	if b.faults.LostUpdate {
		return b.applyMovesLostUpdate(ctx, moves)
	}
	funded := make([]bool, len(moves))
	batch := &pgx.Batch{}
	sql := fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
		version = version + 1 WHERE id = $1 AND free >= $4 RETURNING version`,
		b.ns.Table(schema.AccountsTable))
	if b.faults.UnconditionalDebit {
		sql = fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
			version = version + 1 WHERE id = $1 AND $4::bigint IS NOT NULL RETURNING version`,
			b.ns.Table(schema.AccountsTable))
	}
	for i, m := range moves {
		batch.Queue(sql, m.account, m.change.Free, m.change.Locked, m.change.Cost()).
			QueryRow(func(row pgx.Row) error {
				var version int64
				err := row.Scan(&version)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("move cash of account %s: %w", m.account, err)
				}
				funded[i] = true
				b.versions[m.account] = version
				return nil
			})
	}
	if err := b.tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	return funded, nil
}

// applyMovesLostUpdate is the lost-update sabotage: it reads each balance, computes the new
// one in Go and writes it back as an absolute value. At READ COMMITTED nothing stops two
// orders from reading the same balance, and the second write erases the first. The pause
// between read and write widens that window so that the defect shows on every run.
func (b *sqlBook) applyMovesLostUpdate(ctx context.Context, moves []cashMove) ([]bool, error) {
	funded := make([]bool, len(moves))
	for i, m := range moves {
		var free, locked, version int64
		err := b.tx.QueryRow(ctx, fmt.Sprintf("SELECT free, locked, version FROM %s WHERE id = $1",
			b.ns.Table(schema.AccountsTable)), m.account).Scan(&free, &locked, &version)
		if err != nil {
			return nil, fmt.Errorf("read account %s: %w", m.account, err)
		}
		if free < m.change.Cost() {
			continue
		}
		if err := sleep(ctx, lostUpdatePause); err != nil {
			return nil, err
		}
		_, err = b.tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET free = $2, locked = $3, version = $4
			WHERE id = $1`, b.ns.Table(schema.AccountsTable)),
			m.account, free+m.change.Free, locked+m.change.Locked, version+1)
		if err != nil {
			return nil, fmt.Errorf("write account %s: %w", m.account, err)
		}
		funded[i] = true
		b.versions[m.account] = version + 1
	}
	return funded, nil
}

// undoMoves reverses the moves that were applied and writes the rows of the accounts that
// could not pay, in one round trip.
func (b *sqlBook) undoMoves(ctx context.Context, moves []cashMove, funded []bool) error {
	batch := &pgx.Batch{}
	for i, m := range moves {
		change := CashChange{}
		if funded[i] {
			change = CashChange{-m.change.Free, -m.change.Locked}
		}
		batch.Queue(fmt.Sprintf(`UPDATE %s SET free = free + $2, locked = locked + $3,
			version = version + 1 WHERE id = $1 RETURNING version`, b.ns.Table(schema.AccountsTable)),
			m.account, change.Free, change.Locked).QueryRow(func(row pgx.Row) error {
			var version int64
			if err := row.Scan(&version); err != nil {
				return fmt.Errorf("undo cash move of account %s: %w", m.account, err)
			}
			b.versions[m.account] = version
			return nil
		})
	}
	return b.tx.SendBatch(ctx, batch).Close()
}
