package engine

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/jackc/pgx/v5"

	"parity/schema"
)

// historyChunk is how many history rows one transaction writes, under DSQL's 3,000 changed
// rows per transaction.
const historyChunk = 1000

// WriteHistory stores the client's own record of every fired order in the namespace's
// history table, so that the audit can compare it with the database in SQL, and a later
// parity verify can do so again. Orders never fired are left out.
func (e *Engine) WriteHistory(ctx context.Context, records []OrderRecord) error {
	rng := rand.New(rand.NewPCG(e.sc.Seed, 0x415))
	sql := fmt.Sprintf(`INSERT INTO %s (seq, order_id, outcome, attempts, lost_commits,
		resolved_committed, resolved_not_committed, status, cancel_reason, filled, fills, notional)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, e.ns.Table(schema.HistoryTable))
	for start := 0; start < len(records); start += historyChunk {
		chunk := records[start:min(start+historyChunk, len(records))]
		res := e.admin.Run(ctx, rng, func(ctx context.Context, tx pgx.Tx) error {
			b := &pgx.Batch{}
			for i := range chunk {
				r := &chunk[i]
				if r.Outcome == 0 {
					continue
				}
				b.Queue(sql, r.Seq, r.ID, r.Outcome.String(), r.Attempts, r.LostCommits,
					r.ResolvedCommitted, r.ResolvedNotCommitted, nullable(r.Status), nullable(r.Reason),
					r.Filled, r.Fills, r.Notional)
			}
			return tx.SendBatch(ctx, b).Close()
		}, nil)
		if res.Outcome != Committed {
			return fmt.Errorf("write client history: %s after %d attempts: %w", res.Outcome,
				len(res.Attempts), res.Err)
		}
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
