package scenario

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Limits on scenario values. They keep a run's memory bounded and its int64 arithmetic
// exact: a group's deposits stay below 10^18 cents, and an order's cost below 10^8 cents.
const (
	maxNameLength  = 40
	maxMarkets     = 10_000
	maxGroupSize   = 1_000_000
	maxBalance     = 1_000_000_000_000 // cents per account
	minPrice       = 1
	maxPrice       = 99
	maxQuantity    = 1_000_000
	maxTotalOrders = 10_000_000
	maxConcurrency = 10_000
	maxAttempts    = 1000
)

// defaultSchema is the schema variant a scenario gets when neither it nor the defaults block
// sets one.
const defaultSchema = "distinct-rows"

// builtinSettings returns the settings of a scenario that neither sets them nor inherits
// them from the file's defaults block. It is the only definition of these defaults. Rate 0
// (no cap) and ExpectContention false are the zero values.
func builtinSettings() Scenario {
	return Scenario{
		Seed:        1,
		Markets:     1,
		Concurrency: 16,
		Retry: Retry{
			MaxAttempts: 10,
			BaseBackoff: 5 * time.Millisecond,
			MaxBackoff:  time.Second,
		},
		Isolation: RepeatableRead,
		Schema:    defaultSchema,
		Outcome:   Drawn,
	}
}

// namePattern is the form of scenario and account group names.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// checkName returns why name is not a valid scenario or group name, or "".
func checkName(name string) string {
	if len(name) > maxNameLength {
		return fmt.Sprintf("%q is %d characters long; the maximum is %d",
			name, len(name), maxNameLength)
	}
	if !namePattern.MatchString(name) {
		return fmt.Sprintf("%q is not a valid name; use lowercase letters, digits and "+
			"hyphens, starting with a letter or digit", name)
	}
	return ""
}

// validator turns a decoded file into scenarios, or returns the first problem found.
type validator struct {
	doc  *document
	opts Options
	// scenario is the name of the scenario being validated, for errors. It is empty outside
	// a scenario.
	scenario string
}

// errorf returns an *Error at node for the key path key.
func (v *validator) errorf(node ast.Node, key, format string, args ...any) *Error {
	return v.doc.newError(node, v.scenario, key, fmt.Sprintf(format, args...))
}

// validateFile validates the defaults block and then each scenario in file order.
func (v *validator) validateFile(raw *rawFile) ([]*Scenario, error) {
	if raw.Defaults != nil {
		if err := v.checkSettings(raw.Defaults, "defaults."); err != nil {
			return nil, err
		}
		if err := v.checkBackoffs(raw.Defaults, nil, "defaults."); err != nil {
			return nil, err
		}
	}

	list := raw.Scenarios
	if len(list.items) == 0 {
		return nil, v.errorf(list.node, "scenarios", "%s; add at least one scenario",
			missingOrEmpty(list.node))
	}

	scenarios := make([]*Scenario, 0, len(list.items))
	firstWithName := make(map[string]ast.Node)
	for i := range list.items {
		entry := &list.items[i]
		entry.node = entryNode(entry.node, list.node, i)
		if err := v.checkScenarioName(i, entry, firstWithName); err != nil {
			return nil, err
		}
		s, err := v.validateScenario(entry, raw.Defaults)
		if err != nil {
			return nil, err
		}
		scenarios = append(scenarios, s)
	}
	return scenarios, nil
}

// checkScenarioName checks the name of scenario i, which must be unique in the file, and
// sets v.scenario to it. firstWithName maps each name seen so far to its node.
func (v *validator) checkScenarioName(i int, raw *rawScenario, firstWithName map[string]ast.Node) error {
	v.scenario = ""
	key := fmt.Sprintf("scenarios[%d].name", i)
	if !raw.Name.set() {
		return v.errorf(raw.node, key, "missing; every scenario needs a name, such as name: proof")
	}
	if message := checkName(raw.Name.value); message != "" {
		return v.errorf(raw.Name.node, key, "%s", message)
	}

	v.scenario = raw.Name.value
	if first, ok := firstWithName[raw.Name.value]; ok {
		return v.errorf(raw.Name.node, "name", "%q is already the name of the scenario at "+
			"line %d; names must be unique", raw.Name.value, startToken(first).Position.Line)
	}
	firstWithName[raw.Name.value] = raw.Name.node
	return nil
}

// missingOrEmpty describes an absent or empty list for a message.
func missingOrEmpty(node ast.Node) string {
	if node == nil {
		return "missing"
	}
	return "empty"
}

// validateScenario checks the rest of a scenario whose name checkScenarioName accepted,
// layers the defaults under it and returns the result. defaults is nil when the file has no
// defaults block.
func (v *validator) validateScenario(raw *rawScenario, defaults *rawSettings) (*Scenario, error) {
	if err := v.checkSettings(&raw.Settings, ""); err != nil {
		return nil, err
	}
	if err := v.checkBackoffs(&raw.Settings, defaults, ""); err != nil {
		return nil, err
	}
	s := &Scenario{
		Name:             raw.Name.value,
		Description:      strings.TrimSpace(raw.Description.value),
		ExpectContention: raw.ExpectContention.value,
	}
	applySettings(s, &raw.Settings, defaults)
	if err := v.checkDefaultSchema(s, raw, defaults); err != nil {
		return nil, err
	}

	var err error
	if s.Accounts, err = v.validateGroups(raw); err != nil {
		return nil, err
	}
	if s.Flows, err = v.validateFlows(raw, s.Accounts, s.Markets); err != nil {
		return nil, err
	}
	s.plan = newPlan(s)
	return s, nil
}

// pick returns the scenario's own value of a setting if it sets one, else the value from the
// defaults block, which may be unset too.
func pick[T scalarType](
	own, defaults *rawSettings, get func(*rawSettings) scalar[T],
) scalar[T] {
	if value := get(own); value.set() || defaults == nil {
		return value
	}
	return get(defaults)
}

// or returns the scalar's value, or fallback when the scalar is unset.
func (s scalar[T]) or(fallback T) T {
	if s.set() {
		return s.value
	}
	return fallback
}

// retryOf returns the retry block of settings. Its fields are unset when the block is absent.
func retryOf(settings *rawSettings) rawRetry {
	if settings == nil || settings.Retry == nil {
		return rawRetry{}
	}
	return *settings.Retry
}

// Getters of each setting, for pick.
func getSeed(r *rawSettings) scalar[uint64]               { return r.Seed }
func getMarkets(r *rawSettings) scalar[int64]             { return r.Markets }
func getConcurrency(r *rawSettings) scalar[int64]         { return r.Concurrency }
func getRate(r *rawSettings) scalar[int64]                { return r.Rate }
func getIsolation(r *rawSettings) scalar[string]          { return r.Isolation }
func getSchema(r *rawSettings) scalar[string]             { return r.Schema }
func getOutcome(r *rawSettings) scalar[string]            { return r.Outcome }
func getMaxAttempts(r *rawSettings) scalar[int64]         { return retryOf(r).MaxAttempts }
func getBaseBackoff(r *rawSettings) scalar[time.Duration] { return retryOf(r).BaseBackoff }
func getMaxBackoff(r *rawSettings) scalar[time.Duration]  { return retryOf(r).MaxBackoff }

// applySettings fills the settings of s from the scenario's own values, then the defaults
// block, then the built-in defaults. The values were checked by checkSettings.
func applySettings(s *Scenario, own, defaults *rawSettings) {
	b := builtinSettings()
	s.Seed = pick(own, defaults, getSeed).or(b.Seed)
	s.Markets = int(pick(own, defaults, getMarkets).or(int64(b.Markets)))
	s.Concurrency = int(pick(own, defaults, getConcurrency).or(int64(b.Concurrency)))
	s.Rate = int(pick(own, defaults, getRate).or(int64(b.Rate)))
	s.Isolation = pick(own, defaults, getIsolation).or(b.Isolation)
	s.Schema = pick(own, defaults, getSchema).or(b.Schema)
	s.Outcome = Outcome(pick(own, defaults, getOutcome).or(string(b.Outcome)))
	s.Retry = Retry{
		MaxAttempts: int(pick(own, defaults, getMaxAttempts).or(int64(b.Retry.MaxAttempts))),
		BaseBackoff: pick(own, defaults, getBaseBackoff).or(b.Retry.BaseBackoff),
		MaxBackoff:  pick(own, defaults, getMaxBackoff).or(b.Retry.MaxBackoff),
	}
}

// checkSettings checks each setting that raw sets on its own. prefix is "defaults." for the
// defaults block and "" for a scenario, and starts every key in the errors.
func (v *validator) checkSettings(raw *rawSettings, prefix string) error {
	ints := []struct {
		value   scalar[int64]
		key     string
		min     int64
		max     int64
		meaning string
	}{
		{raw.Markets, "markets", 1, maxMarkets, ""},
		{raw.Concurrency, "concurrency", 1, maxConcurrency,
			" (the number of orders in flight at once)"},
		{raw.Rate, "rate", 0, math.MaxInt64, " (orders per second; 0 means no cap)"},
		{retryOf(raw).MaxAttempts, "retry.max_attempts", 1, maxAttempts,
			" (attempts per transaction, counting the first; 1 means never retry)"},
	}
	for _, c := range ints {
		if c.value.set() && (c.value.value < c.min || c.value.value > c.max) {
			return v.errorf(c.value.node, prefix+c.key, "%s", outside(c.value.value, c.min, c.max,
				c.meaning))
		}
	}

	for _, d := range []struct {
		value scalar[time.Duration]
		key   string
	}{
		{retryOf(raw).BaseBackoff, "retry.base_backoff"},
		{retryOf(raw).MaxBackoff, "retry.max_backoff"},
	} {
		if d.value.set() && d.value.value < 0 {
			return v.errorf(d.value.node, prefix+d.key,
				"%v is negative; use 0 or a positive duration such as 5ms", d.value.value)
		}
	}
	return v.checkNames(raw, prefix)
}

// outside returns the message for n outside min..max. A max of math.MaxInt64 means no upper
// bound.
func outside(n, min, max int64, meaning string) string {
	if max == math.MaxInt64 {
		return fmt.Sprintf("%d is less than %d%s", n, min, meaning)
	}
	return fmt.Sprintf("%d is outside %d..%d%s", n, min, max, meaning)
}

// checkNames checks the settings that take one of a set of names.
func (v *validator) checkNames(raw *rawSettings, prefix string) error {
	if iso := raw.Isolation; iso.set() &&
		!slices.Contains([]string{RepeatableRead, Serializable, ReadCommitted}, iso.value) {
		return v.errorf(iso.node, prefix+"isolation", "%q is not an isolation level; use %s, %s "+
			"or %s", iso.value, RepeatableRead, Serializable, ReadCommitted)
	}
	if out := raw.Outcome; out.set() &&
		!slices.Contains([]Outcome{Yes, No, Drawn}, Outcome(out.value)) {
		return v.errorf(out.node, prefix+"outcome", "%q is not an outcome; use %s, %s or %s "+
			"(%s draws each market's outcome from the seed)", out.value, Yes, No, Drawn, Drawn)
	}
	if schema := raw.Schema; schema.set() {
		if message := v.checkSchema(schema.value); message != "" {
			return v.errorf(schema.node, prefix+"schema", "%s", message)
		}
	}
	return nil
}

// checkSchema returns why name is not an accepted schema variant, or "".
func (v *validator) checkSchema(name string) string {
	if name == "" {
		return `"" is empty; name a schema variant`
	}
	if v.opts.Schemas == nil || slices.Contains(v.opts.Schemas, name) {
		return ""
	}
	return fmt.Sprintf("%q is not a schema variant; use one of: %s", name, acceptedSchemas(v.opts))
}

// acceptedSchemas lists the accepted schema variants for a message.
func acceptedSchemas(opts Options) string {
	if len(opts.Schemas) == 0 {
		return "(none)"
	}
	return strings.Join(opts.Schemas, ", ")
}

// checkDefaultSchema rejects a scenario that gets the built-in schema variant when Options
// does not accept it.
func (v *validator) checkDefaultSchema(s *Scenario, raw *rawScenario, defaults *rawSettings) error {
	if pick(&raw.Settings, defaults, getSchema).set() {
		return nil
	}
	if message := v.checkSchema(s.Schema); message != "" {
		return v.errorf(raw.node, "schema", "not set, and the built-in default %q is not an "+
			"accepted schema variant; set schema to one of: %s", s.Schema, acceptedSchemas(v.opts))
	}
	return nil
}

// checkBackoffs rejects a retry.max_backoff below retry.base_backoff once own is layered over
// defaults and the built-in values. The error goes to a value that own sets. When own sets
// neither, the conflict lies in the defaults block, which is checked on its own.
func (v *validator) checkBackoffs(own, defaults *rawSettings, prefix string) error {
	b := builtinSettings().Retry
	base := pick(own, defaults, getBaseBackoff).or(b.BaseBackoff)
	max := pick(own, defaults, getMaxBackoff).or(b.MaxBackoff)
	if max >= base {
		return nil
	}

	ownRetry := retryOf(own)
	switch {
	case ownRetry.MaxBackoff.set():
		return v.errorf(ownRetry.MaxBackoff.node, prefix+"retry.max_backoff",
			"%v is less than retry.base_backoff (%v%s); raise max_backoff or lower base_backoff",
			max, base, originOf(own, defaults, getBaseBackoff))
	case ownRetry.BaseBackoff.set():
		return v.errorf(ownRetry.BaseBackoff.node, prefix+"retry.base_backoff",
			"%v is more than retry.max_backoff (%v%s); lower base_backoff or raise max_backoff",
			base, max, originOf(own, defaults, getMaxBackoff))
	}
	return nil
}

// originOf describes where the layered value of a setting came from, for a message. It
// returns "" when own sets the value.
func originOf[T scalarType](
	own, defaults *rawSettings, get func(*rawSettings) scalar[T],
) string {
	switch {
	case get(own).set():
		return ""
	case defaults != nil && get(defaults).set():
		return ", from defaults"
	}
	return ", the built-in default"
}
