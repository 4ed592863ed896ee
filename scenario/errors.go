package scenario

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid matches every error that Parse returns: YAML syntax errors, wrong types, unknown
// keys and failed validation rules. Each of those errors is an *Error.
var ErrInvalid = errors.New("invalid scenario file")

// ErrNotFound is returned by File.Lookup when no scenario has the requested name.
var ErrNotFound = errors.New("scenario not found")

// Error is one problem in a scenario file, located at the offending key or value.
//
// Its text has the form
//
//	scenarios.yaml:14:7: scenario "proof": flows[1].price.min: 0 is outside 1..99 (...)
//
// Parts that are unknown are left out: the position when Line is 0, the scenario when the
// problem lies outside a named scenario.
type Error struct {
	// Source is the file name given to Parse.
	Source string
	// Line and Column count from 1. Line is 0 when the position is unknown.
	Line, Column int
	// Scenario is the name of the scenario that contains the problem, or "" when the problem
	// lies outside a scenario or the scenario has no valid name.
	Scenario string
	// Key is the path of the offending key, such as flows[1].price.min. Indexes count from 0.
	// The path starts at the scenario when Scenario is set, and at the file root otherwise
	// (defaults.retry.max_backoff, scenarios[2].name).
	Key string
	// Message describes what is wrong with the value and how to fix it.
	Message string
}

// Error formats the problem as "source:line:column: scenario "name": key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Scenario != "" {
		fmt.Fprintf(&b, "scenario %q: ", e.Scenario)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns ErrInvalid, so that errors.Is(err, ErrInvalid) holds for every *Error.
func (e *Error) Unwrap() error {
	return ErrInvalid
}
