package scenario

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// The raw types mirror the file as written, before defaults are applied. Every value keeps
// the YAML node it came from, so that validation can report its line and column, and a nil
// node means the key is absent or null. The decoder runs with yaml.DisallowUnknownField, so
// every yaml tag below is also the list of keys allowed at that level.

// rawFile is a whole scenario file.
type rawFile struct {
	Defaults  *rawSettings          `yaml:"defaults"`
	Scenarios nodeList[rawScenario] `yaml:"scenarios"`
}

// rawSettings contains the keys that the defaults block may set for every scenario.
type rawSettings struct {
	Seed        scalar[uint64] `yaml:"seed"`
	Markets     scalar[int64]  `yaml:"markets"`
	Concurrency scalar[int64]  `yaml:"concurrency"`
	Rate        scalar[int64]  `yaml:"rate"`
	Isolation   scalar[string] `yaml:"isolation"`
	Schema      scalar[string] `yaml:"schema"`
	Outcome     scalar[string] `yaml:"outcome"`
	Retry       *rawRetry      `yaml:"retry"`
}

// rawRetry is the retry block of the defaults or of a scenario.
type rawRetry struct {
	MaxAttempts scalar[int64]         `yaml:"max_attempts"`
	BaseBackoff scalar[time.Duration] `yaml:"base_backoff"`
	MaxBackoff  scalar[time.Duration] `yaml:"max_backoff"`
}

// rawScenario is one entry of the scenarios list.
type rawScenario struct {
	node             ast.Node
	Name             scalar[string]     `yaml:"name"`
	Description      scalar[string]     `yaml:"description"`
	Settings         rawSettings        `yaml:",inline"`
	Accounts         nodeList[rawGroup] `yaml:"accounts"`
	Flows            nodeList[rawFlow]  `yaml:"flows"`
	ExpectContention scalar[bool]       `yaml:"expect_contention"`
}

// rawGroup is one account group.
type rawGroup struct {
	node    ast.Node
	Name    scalar[string] `yaml:"name"`
	Count   scalar[int64]  `yaml:"count"`
	Balance scalar[int64]  `yaml:"balance"`
}

// rawFlow is one order flow.
type rawFlow struct {
	node     ast.Node
	Count    scalar[int64]           `yaml:"count"`
	Group    scalar[string]          `yaml:"group"`
	Side     scalar[string]          `yaml:"side"`
	Price    rawRange                `yaml:"price"`
	Quantity rawRange                `yaml:"quantity"`
	Markets  nodeList[scalar[int64]] `yaml:"markets"`
}

// rawRange is a price or quantity: a single number, or a mapping with min and max.
type rawRange struct {
	node ast.Node
	// single is true for the scalar form, in which Min and Max hold the same value.
	single bool
	Min    scalar[int64] `yaml:"min"`
	Max    scalar[int64] `yaml:"max"`
}

// UnmarshalYAML decodes the scenario's keys and keeps its node.
func (s *rawScenario) UnmarshalYAML(_ context.Context, unmarshal func(any) error) error {
	type plain rawScenario
	return decodeWithNode(&s.node, (*plain)(s), unmarshal)
}

// UnmarshalYAML decodes the group's keys and keeps its node.
func (g *rawGroup) UnmarshalYAML(_ context.Context, unmarshal func(any) error) error {
	type plain rawGroup
	return decodeWithNode(&g.node, (*plain)(g), unmarshal)
}

// UnmarshalYAML decodes the flow's keys and keeps its node.
func (f *rawFlow) UnmarshalYAML(_ context.Context, unmarshal func(any) error) error {
	type plain rawFlow
	return decodeWithNode(&f.node, (*plain)(f), unmarshal)
}

// decodeWithNode stores the node being decoded in node, then decodes it into value.
func decodeWithNode(node *ast.Node, value any, unmarshal func(any) error) error {
	if err := unmarshal(node); err != nil {
		return err
	}
	return unmarshal(value)
}

// UnmarshalYAML decodes either form of a range: "price: 50" or "price: {min: 45, max: 70}".
func (r *rawRange) UnmarshalYAML(_ context.Context, unmarshal func(any) error) error {
	var node ast.Node
	if err := unmarshal(&node); err != nil {
		return err
	}
	switch node.Type() {
	case ast.NullType:
		return nil
	case ast.MappingType:
		r.node = node
		type plain rawRange
		return unmarshal((*plain)(r))
	case ast.SequenceType:
		return &nodeError{node: node, message: "expected a number such as 50 or a mapping " +
			"such as {min: 45, max: 70}, found a list"}
	}
	r.node = node
	r.single = true
	if err := unmarshal(&r.Min); err != nil {
		return err
	}
	r.Max = r.Min
	return nil
}

// nodeList is a YAML sequence that keeps its own node, so that an error about an empty list
// can point at it.
type nodeList[T any] struct {
	node  ast.Node
	items []T
}

// UnmarshalYAML decodes the items and keeps the sequence's node. A null list counts as absent.
func (l *nodeList[T]) UnmarshalYAML(_ context.Context, unmarshal func(any) error) error {
	if err := decodeWithNode(&l.node, &l.items, unmarshal); err != nil {
		return err
	}
	if l.node.Type() == ast.NullType {
		l.node = nil
	}
	return nil
}

// scalarType lists the Go types that a scalar can hold.
type scalarType interface {
	int64 | uint64 | string | bool | time.Duration
}

// scalar is a single value of type int64, uint64, string, bool or time.Duration, with the node
// it was read from. The goccy decoder would silently truncate 2.5 to an integer and accept
// "3" in quotes as a number, and its duration errors carry no position, so scalars are
// converted here instead.
type scalar[T scalarType] struct {
	value T
	node  ast.Node
}

// set reports whether the file gave the key a non-null value.
func (s scalar[T]) set() bool {
	return s.node != nil
}

// UnmarshalYAML converts node to T, or returns a *nodeError that names the expected type.
// A null node leaves the scalar unset.
func (s *scalar[T]) UnmarshalYAML(_ context.Context, node ast.Node) error {
	if node.Type() == ast.NullType {
		return nil
	}
	s.node = node
	var message string
	switch v := any(&s.value).(type) {
	case *int64:
		*v, message = parseInt(node)
	case *uint64:
		*v, message = parseUint(node)
	case *string:
		*v, message = parseString(node)
	case *bool:
		*v, message = parseBool(node)
	case *time.Duration:
		*v, message = parseDuration(node)
	}
	if message != "" {
		return &nodeError{node: node, message: message}
	}
	return nil
}

// nodeError is a conversion error at a node of the file.
type nodeError struct {
	node    ast.Node
	message string
}

func (e *nodeError) Error() string {
	return e.message
}

// parseInt returns the value of an integer node, or a message that explains why the node is
// not one.
func parseInt(node ast.Node) (int64, string) {
	switch n := node.(type) {
	case *ast.IntegerNode:
		// goccy stores non-negative integers as uint64 and negative ones as int64.
		switch v := n.Value.(type) {
		case int64:
			return v, ""
		case uint64:
			if v <= math.MaxInt64 {
				return int64(v), ""
			}
		}
		return 0, fmt.Sprintf("%s is too large; the maximum is %d", n.Token.Value, math.MaxInt64)
	case *ast.FloatNode:
		return 0, fmt.Sprintf("%s is not a whole number", n.Token.Value)
	case *ast.StringNode:
		if n.Token.Type == token.StringType && wholeNumber.MatchString(n.Value) {
			// goccy reads an integer beyond the uint64 range as a string.
			return 0, fmt.Sprintf("%s is too large; the maximum is %d", n.Value, math.MaxInt64)
		}
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			return 0, fmt.Sprintf("%q is a string; remove the quotes to make it a number", n.Value)
		}
		return 0, fmt.Sprintf("%q is not a whole number", n.Value)
	}
	return 0, "expected a whole number, found " + describeNode(node)
}

// wholeNumber matches the text of a decimal integer.
var wholeNumber = regexp.MustCompile(`^[-+]?[0-9]+$`)

// parseUint returns the value of a non-negative integer node, or a message that explains why
// the node is not one.
func parseUint(node ast.Node) (uint64, string) {
	if n, ok := node.(*ast.IntegerNode); ok {
		switch v := n.Value.(type) {
		case uint64:
			return v, ""
		case int64:
			if v >= 0 {
				return uint64(v), ""
			}
			return 0, fmt.Sprintf("%d is negative; use a whole number from 0 to %d", v,
				uint64(math.MaxUint64))
		}
	}
	if n, ok := node.(*ast.StringNode); ok && n.Token.Type == token.StringType &&
		wholeNumber.MatchString(n.Value) {
		return 0, fmt.Sprintf("%s is too large; the maximum is %d", n.Value,
			uint64(math.MaxUint64))
	}
	_, message := parseInt(node)
	return 0, message
}

// parseString returns the text of a scalar node. Numbers and booleans count as text, so that
// "name: 2026" reads as the name "2026".
func parseString(node ast.Node) (string, string) {
	switch n := node.(type) {
	case *ast.StringNode:
		return n.Value, ""
	case *ast.LiteralNode:
		return n.Value.Value, ""
	case ast.ScalarNode:
		return n.GetToken().Value, ""
	}
	return "", "expected a string, found " + describeNode(node)
}

// parseBool returns the value of a true or false node.
func parseBool(node ast.Node) (bool, string) {
	if n, ok := node.(*ast.BoolNode); ok {
		return n.Value, ""
	}
	return false, fmt.Sprintf("expected true or false, found %s", describeNode(node))
}

// parseDuration returns the value of a Go duration string such as 5ms or 1s.
func parseDuration(node ast.Node) (time.Duration, string) {
	text, message := parseString(node)
	if message != "" {
		return 0, "expected a duration such as 5ms or 1s, found " + describeNode(node)
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Sprintf("%s is not a duration; write a number with a unit, such as 5ms or 1s",
			describeNode(node))
	}
	return d, ""
}

// describeNode names a node for a message: the source text of a scalar, or its kind.
func describeNode(node ast.Node) string {
	switch node.Type() {
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType:
		return strconv.Quote(node.(*ast.StringNode).Value)
	case ast.TagType:
		return node.String()
	}
	if tok := node.GetToken(); tok != nil {
		return tok.Value
	}
	return node.Type().YAMLName()
}
