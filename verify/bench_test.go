package verify_test

import (
	"context"
	"fmt"
	"testing"

	"parity/verify"
)

// BenchmarkAudit measures a final audit, every check included, over books of growing size,
// and reports the cost per order: flat figures across sizes mean the audit grows linearly.
func BenchmarkAudit(b *testing.B) {
	for _, orders := range []int{1000, 4000, 16000} {
		b.Run(fmt.Sprintf("orders=%d", orders), func(b *testing.B) {
			pool, ns, sc := runScenario(b, fmt.Sprintf(`
scenarios:
  - name: bench
    seed: 3
    markets: 40
    accounts:
      - {name: traders, count: 400, balance: 1000000}
    flows:
      - {count: %[1]d, group: traders, side: buy, price: {min: 40, max: 60}, quantity: {min: 1, max: 5}}
      - {count: %[1]d, group: traders, side: sell, price: {min: 40, max: 60}, quantity: {min: 1, max: 5}}
    concurrency: 32
`, orders/2))
			deposits := sc.TotalDeposits()
			verify.Analyze(context.Background(), pool, ns)
			exp := verify.Expect{Phase: verify.Final, Deposits: &deposits}
			for b.Loop() {
				results, err := verify.Audit(context.Background(), pool, ns, exp)
				if err != nil {
					b.Fatal(err)
				}
				if v := verify.Overall(results); v != verify.Consistent {
					b.Fatalf("audit of clean books: %s", v)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(orders), "µs/order")
		})
	}
}
