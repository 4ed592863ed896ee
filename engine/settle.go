package engine

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/scenario"
	"parity/schema"
)

// settleChunk is how many positions one settlement transaction pays out: four rows each,
// under DSQL's 3,000 changed rows per transaction.
const settleChunk = 200

// MarketSettlement is the result of settling one market.
type MarketSettlement struct {
	Market    uuid.UUID
	Name      string
	Outcome   scenario.Outcome
	Positions int
	// Paid is the cents paid to long positions; Released is the collateral released from
	// short positions. Settlement is zero-sum when Paid equals Released on YES, and Paid is
	// zero on NO.
	Paid     int64
	Released int64
}

// Settle resolves every market as the scenario specifies and settles it: each winning contract
// pays ContractValue cents and every short's collateral is released. Cash passes through
// the market's clearing bucket, so each settlement transaction is a balanced journal on its
// own, and the clearing bucket nets to zero once the market is settled.
//
// Markets settle one after another. An account holds positions in many markets, so
// settling markets side by side makes their transactions conflict on the same account rows,
// and at repeatable read nearly every chunk would fail and retry.
func (e *Engine) Settle(ctx context.Context) ([]MarketSettlement, error) {
	results := make([]MarketSettlement, 0, e.sc.Markets)
	rng := rand.New(rand.NewPCG(e.sc.Seed, 0x5e771e))
	for m := range e.sc.Markets {
		res, err := e.settleMarket(ctx, rng, m)
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

func (e *Engine) settleMarket(ctx context.Context, rng *rand.Rand, m int) (MarketSettlement, error) {
	s := MarketSettlement{Market: e.sc.MarketID(m), Name: e.sc.MarketName(m), Outcome: e.sc.MarketOutcome(m)}
	err := e.settleStep(ctx, rng, fmt.Sprintf("resolve %s", s.Name), func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET outcome = $2, status = $3,
			version = version + 1 WHERE id = $1 AND status = $4`, e.ns.Table(schema.MarketsTable)),
			s.Market, string(s.Outcome), schema.MarketSettling, schema.MarketOpen)
		if err == nil && tag.RowsAffected() != 1 {
			err = fmt.Errorf("%w: %s", ErrMarketClosed, s.Name)
		}
		return err
	})
	if err != nil {
		return s, err
	}
	for done := false; !done; {
		var chunk MarketSettlement
		err := e.settleStep(ctx, rng, "settle "+s.Name, func(ctx context.Context, tx pgx.Tx) error {
			chunk = MarketSettlement{}
			var err error
			done, err = e.settleChunk(ctx, tx, s.Market, s.Outcome, &chunk)
			return err
		})
		if err != nil {
			return s, err
		}
		s.Positions += chunk.Positions
		s.Paid += chunk.Paid
		s.Released += chunk.Released
	}
	err = e.settleStep(ctx, rng, "close "+s.Name, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET status = $2, version = version + 1
			WHERE id = $1`, e.ns.Table(schema.MarketsTable)), s.Market, schema.MarketSettled)
		return err
	})
	return s, err
}

func (e *Engine) settleStep(ctx context.Context, rng *rand.Rand, what string, body Body) error {
	res := e.admin.Run(ctx, rng, body, nil)
	if res.Outcome != Committed {
		return fmt.Errorf("%s: %s after %d attempts: %w", what, res.Outcome, len(res.Attempts), res.Err)
	}
	return nil
}

type openPosition struct {
	account  uuid.UUID
	quantity int64
}

// settleChunk pays out up to settleChunk unsettled positions of the market in one journal.
// done is true when no unsettled position was left.
func (e *Engine) settleChunk(ctx context.Context, tx pgx.Tx, market uuid.UUID,
	outcome scenario.Outcome, s *MarketSettlement) (done bool, err error) {
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT account_id, quantity FROM %s
		WHERE market_id = $1 AND NOT settled ORDER BY account_id LIMIT %d`,
		e.ns.Table(schema.PositionsTable), settleChunk), market)
	if err != nil {
		return false, fmt.Errorf("read positions: %w", err)
	}
	positions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (openPosition, error) {
		var p openPosition
		err := row.Scan(&p.account, &p.quantity)
		return p, err
	})
	if err != nil {
		return false, fmt.Errorf("read positions: %w", err)
	}
	if len(positions) == 0 {
		return true, nil
	}

	journal := uuid.New()
	b := &pgx.Batch{}
	for _, p := range positions {
		entries := SettlementEntries(p.account, p.quantity, outcome)
		for _, en := range entries {
			if en.Bucket == schema.BucketClearing {
				continue
			}
			b.Queue(fmt.Sprintf(`UPDATE %s SET %s = %[2]s + $2, version = version + 1 WHERE id = $1`,
				e.ns.Table(schema.AccountsTable), en.Bucket), en.Account, en.Amount)
		}
		e.queueEntries(b, journal, market, entries)
		b.Queue(fmt.Sprintf(`UPDATE %s SET settled = true WHERE account_id = $1 AND market_id = $2`,
			e.ns.Table(schema.PositionsTable)), p.account, market)
		s.Positions++
		if p.quantity > 0 && outcome == scenario.Yes {
			s.Paid += ContractValue * p.quantity
		}
		s.Released += Collateral(p.quantity)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return false, fmt.Errorf("pay out positions: %w", err)
	}
	return false, nil
}

func (e *Engine) queueEntries(b *pgx.Batch, journal, market uuid.UUID, entries []Entry) {
	sql := fmt.Sprintf(`INSERT INTO %s (id, journal_id, kind, account_id, bucket, amount, market_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.ns.Table(schema.LedgerTable))
	for _, en := range entries {
		var account *uuid.UUID
		if en.Account != uuid.Nil {
			account = &en.Account
		}
		b.Queue(sql, uuid.New(), journal, schema.KindSettlement, account, en.Bucket, en.Amount, market)
	}
}

// SettlementEntries returns the ledger entries that settle one position of qty contracts.
// On YES a long is paid from the clearing bucket and a short's collateral goes into it. On
// NO a short's collateral returns to its free cash and a long gets nothing. The entries of
// one position always sum to zero.
func SettlementEntries(account uuid.UUID, qty int64, outcome scenario.Outcome) []Entry {
	switch {
	case qty > 0 && outcome == scenario.Yes:
		pay := ContractValue * qty
		return []Entry{{account, schema.BucketFree, pay}, {uuid.Nil, schema.BucketClearing, -pay}}
	case qty < 0 && outcome == scenario.Yes:
		collateral := Collateral(qty)
		return []Entry{{account, schema.BucketLocked, -collateral}, {uuid.Nil, schema.BucketClearing, collateral}}
	case qty < 0:
		collateral := Collateral(qty)
		return []Entry{{account, schema.BucketLocked, -collateral}, {account, schema.BucketFree, collateral}}
	}
	return nil
}
