package engine

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// setupChunk is how many accounts or markets one setup transaction writes. Each account is
// three rows, which keeps a chunk well under DSQL's 3,000 changed rows per transaction.
const setupChunk = 500

// Setup opens the scenario's markets and funds its accounts. Each deposit is a balanced
// journal: the account's free cash is credited and its funding bucket debited by the same
// amount.
func (e *Engine) Setup(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(e.sc.Seed, 0x5e7))
	for start := 0; start < e.sc.Markets; start += setupChunk {
		end := min(start+setupChunk, e.sc.Markets)
		if err := e.runSetup(ctx, rng, "open markets", func(b *pgx.Batch) {
			e.queueMarkets(b, start, end)
		}); err != nil {
			return err
		}
	}
	total := e.sc.TotalAccounts()
	for start := 0; start < total; start += setupChunk {
		end := min(start+setupChunk, total)
		if err := e.runSetup(ctx, rng, "fund accounts", func(b *pgx.Batch) {
			e.queueAccounts(b, start, end)
		}); err != nil {
			return err
		}
	}
	e.log.Debug("setup done", "markets", e.sc.Markets, "accounts", total)
	return nil
}

func (e *Engine) runSetup(ctx context.Context, rng *rand.Rand, what string, queue func(*pgx.Batch)) error {
	res := e.admin.Run(ctx, rng, func(ctx context.Context, tx pgx.Tx) error {
		b := &pgx.Batch{}
		queue(b)
		return tx.SendBatch(ctx, b).Close()
	}, nil)
	if res.Outcome != Committed {
		return fmt.Errorf("%s: %s after %d attempts: %w", what, res.Outcome, len(res.Attempts), res.Err)
	}
	return nil
}

func (e *Engine) queueMarkets(b *pgx.Batch, start, end int) {
	sql := fmt.Sprintf(`INSERT INTO %s (id, name, status, outcome, version)
		VALUES ($1, $2, $3, NULL, 0)`, e.ns.Table(schema.MarketsTable))
	for m := start; m < end; m++ {
		b.Queue(sql, e.sc.MarketID(m), e.sc.MarketName(m), schema.MarketOpen)
	}
}

func (e *Engine) queueAccounts(b *pgx.Batch, start, end int) {
	account := fmt.Sprintf(`INSERT INTO %s (id, name, free, locked, deposited, version)
		VALUES ($1, $2, $3, 0, $3, 0)`, e.ns.Table(schema.AccountsTable))
	entry := fmt.Sprintf(`INSERT INTO %s (id, journal_id, kind, account_id, bucket, amount)
		VALUES ($1, $2, $3, $4, $5, $6)`, e.ns.Table(schema.LedgerTable))
	for i := start; i < end; i++ {
		id, balance := e.sc.AccountID(i), e.sc.AccountBalance(i)
		b.Queue(account, id, e.sc.AccountName(i), balance)
		journal := uuid.New()
		b.Queue(entry, uuid.New(), journal, schema.KindDeposit, id, schema.BucketFree, balance)
		b.Queue(entry, uuid.New(), journal, schema.KindDeposit, id, schema.BucketFunding, -balance)
	}
}
