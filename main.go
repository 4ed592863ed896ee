// Command parity stress-tests the consistency of an exchange ledger on PostgreSQL and Amazon
// Aurora DSQL. It fires a seeded stream of concurrent, conflicting orders through an
// embedded matching engine, retries serialization failures, settles the markets, and proves
// that the books are exact.
//
// Exit codes: 0 consistent, 1 inconsistent, 2 invalid usage or scenario, 3 infrastructure
// failure, 4 inconclusive, 130 interrupted.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// A closed stdout pipe, as in parity run | head, then fails the write instead of
	// killing the process before it can remove its server and namespace.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one stops the process at once.
		<-ctx.Done()
		stop()
	}()
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
