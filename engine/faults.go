package engine

// Faults are deliberate defects in the engine, used to show that the audit catches them.
// The zero value is the correct engine.
type Faults struct {
	// UnconditionalDebit debits without checking the balance.
	UnconditionalDebit bool
	// MissingEntry leaves out one ledger entry of each order's first fill.
	MissingEntry bool
}
