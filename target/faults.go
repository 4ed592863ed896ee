package target

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CommitFaults cuts connections at COMMIT on purpose, so that a test or a sabotaged run can
// show what the client does when it cannot know whether its transaction committed.
//
// A broken COMMIT either reaches the server, which commits, before the connection closes
// (the reply is lost), or never leaves the client (the server sees the connection end and
// rolls back). Either way the client's write succeeds and its read fails, which is exactly
// what a network failure during COMMIT looks like.
//
// It recognises COMMIT as pgx sends it: a simple-protocol Query message with the text
// "commit". It works on plain connections only; under TLS the bytes are encrypted.
type CommitFaults struct {
	// PerMille is how many COMMITs in a thousand are broken.
	PerMille int
	// Seed seeds the choice of which COMMITs break and how.
	Seed uint64

	once    sync.Once
	mu      sync.Mutex
	rng     *rand.Rand
	lost    atomic.Int64
	dropped atomic.Int64
}

// Apply wraps the pool's dialer so that its connections break at COMMIT.
func (f *CommitFaults) Apply(cfg *pgxpool.Config) {
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &faultyConn{Conn: conn, faults: f}, nil
	}
}

// Broken returns how many COMMITs reached the server with their reply lost, and how many
// were dropped before reaching it. A nil CommitFaults broke none.
func (f *CommitFaults) Broken() (lostReply, dropped int64) {
	if f == nil {
		return 0, 0
	}
	return f.lost.Load(), f.dropped.Load()
}

// fault draws the fate of one COMMIT: 0 passes, 1 loses the reply, 2 drops the COMMIT.
func (f *CommitFaults) fault() int {
	f.once.Do(func() { f.rng = rand.New(rand.NewPCG(f.Seed, 0xc0)) })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.IntN(1000) >= f.PerMille {
		return 0
	}
	return 1 + f.rng.IntN(2)
}

type faultyConn struct {
	net.Conn
	faults *CommitFaults
}

// commitMessage is the start of a simple-protocol Query message whose text is "commit":
// the type byte, then the length of the body and the length word itself, 11.
var commitMessage = []byte("Q\x00\x00\x00\x0bcommit\x00")

func (c *faultyConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, commitMessage) {
		return c.Conn.Write(p)
	}
	switch c.faults.fault() {
	case 1:
		n, err := c.Conn.Write(p)
		if err != nil {
			return n, err
		}
		c.faults.lost.Add(1)
		c.Conn.Close()
		return n, nil
	case 2:
		c.faults.dropped.Add(1)
		c.Conn.Close()
		return len(p), nil
	}
	return c.Conn.Write(p)
}
