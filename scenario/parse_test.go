package scenario

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseFixture parses a file under testdata and fails the test on any error.
func parseFixture(t *testing.T, path string, opts Options) *File {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	f, err := Parse(data, path, opts)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return f
}

// lookup returns the named scenario of f and fails the test if it is missing.
func lookup(t *testing.T, f *File, name string) *Scenario {
	t.Helper()
	s, err := f.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// settingsOf returns the layered settings of s, for comparing with a table.
func settingsOf(s *Scenario) Scenario {
	return Scenario{
		Seed: s.Seed, Markets: s.Markets, Concurrency: s.Concurrency, Rate: s.Rate,
		Retry: s.Retry, Isolation: s.Isolation, Schema: s.Schema, Outcome: s.Outcome,
		ExpectContention: s.ExpectContention,
	}
}

func TestParse_Layering(t *testing.T) {
	layered := parseFixture(t, "valid/layering.yaml", Options{})
	builtin := parseFixture(t, "valid/builtin.yaml", Options{})
	tests := []struct {
		name     string
		scenario *Scenario
		want     Scenario
	}{
		{
			name:     "built-in defaults only",
			scenario: lookup(t, builtin, "bare"),
			want:     builtinSettings(),
		},
		{
			name:     "file defaults over built-ins",
			scenario: lookup(t, layered, "inherits"),
			want: Scenario{
				Seed: 42, Markets: 4, Concurrency: 16, Rate: 500,
				Retry:     Retry{MaxAttempts: 20, BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second},
				Isolation: Serializable, Schema: defaultSchema, Outcome: Drawn,
			},
		},
		{
			name:     "scenario over file defaults",
			scenario: lookup(t, layered, "overrides"),
			want: Scenario{
				Seed: 7, Markets: 9, Concurrency: 3, Rate: 0,
				Retry:     Retry{MaxAttempts: 3, BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second},
				Isolation: ReadCommitted, Schema: "shared-row", Outcome: No, ExpectContention: true,
			},
		},
		{
			name:     "null values leave keys unset",
			scenario: lookup(t, layered, "nulls"),
			want: Scenario{
				Seed: 42, Markets: 4, Concurrency: 16, Rate: 500,
				Retry:     Retry{MaxAttempts: 20, BaseBackoff: 10 * time.Millisecond, MaxBackoff: time.Second},
				Isolation: Serializable, Schema: defaultSchema, Outcome: Drawn,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settingsOf(tt.scenario); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("settings = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestParse_Forms(t *testing.T) {
	f := parseFixture(t, "valid/forms.yaml", Options{})
	forms := lookup(t, f, "forms")

	if want := "A folded description on two lines."; forms.Description != want {
		t.Errorf("Description = %q, want %q", forms.Description, want)
	}
	wantGroups := []AccountGroup{
		{Name: "traders", Count: 3, Balance: 250000},
		{Name: "whale", Count: 1, Balance: 1000},
	}
	if !slices.Equal(forms.Accounts, wantGroups) {
		t.Errorf("Accounts = %+v, want %+v", forms.Accounts, wantGroups)
	}

	wantFlows := []Flow{
		{Count: 10, Group: "traders", Price: Range{50, 50}, Quantity: Range{2, 2}},
		{Count: 20, Group: "whale", Markets: []int{0, 4}, Price: Range{45, 70},
			Quantity: Range{1, 10}},
		{Count: 30, Group: "traders", Side: Sell, Price: Range{1, 99}, Quantity: Range{1000, 1000}},
		{Count: 1, Group: "traders", Side: Buy, Price: Range{1, 99}, Quantity: Range{16, 16}},
	}
	if len(forms.Flows) != len(wantFlows) {
		t.Fatalf("got %d flows, want %d", len(forms.Flows), len(wantFlows))
	}
	for i, want := range wantFlows {
		t.Run(fmt.Sprintf("flows[%d]", i), func(t *testing.T) {
			got := forms.Flows[i]
			if !slices.Equal(got.Markets, want.Markets) {
				t.Errorf("Markets = %v, want %v", got.Markets, want.Markets)
			}
			got.Markets, want.Markets = nil, nil
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("flow = %+v, want %+v", got, want)
			}
		})
	}

	merged := lookup(t, f, "merged")
	if !slices.Equal(merged.Accounts, wantGroups) {
		t.Errorf("merged Accounts = %+v, want the aliased %+v", merged.Accounts, wantGroups)
	}
	wantMerged := Flow{Count: 10, Group: "traders", Side: Sell, Price: Range{50, 50},
		Quantity: Range{2, 2}}
	if len(merged.Flows) != 1 || fmt.Sprint(merged.Flows[0]) != fmt.Sprint(wantMerged) {
		t.Errorf("merged Flows = %+v, want [%+v]", merged.Flows, wantMerged)
	}
}

// Two schema variants for the cases that pass Options.Schemas; neither is the built-in one.
var testSchemas = []string{"shared-row", "per-market"}

func TestParse_Invalid(t *testing.T) {
	tests := []struct {
		name     string // fixture under testdata/invalid, without .yaml
		schemas  []string
		line     int
		column   int
		scenario string
		key      string
		message  string // a part of Message that names the value and the rule
	}{
		// The file as a whole.
		{"empty-file", nil, 1, 1, "", "", "the file is empty"},
		{"comments-only", nil, 1, 1, "", "", "the file is empty"},
		{"scenarios-missing", nil, 2, 1, "", "scenarios", "missing; add at least one scenario"},
		{"scenarios-empty", nil, 2, 12, "", "scenarios", "empty; add at least one scenario"},
		{"two-documents", nil, 9, 1, "", "", "the file contains 2 YAML documents"},
		{"syntax-error", nil, 2, 12, "", "", "sequence end token ']' not found"},
		{"top-level-list", nil, 2, 1, "", "", "expected a mapping, found a list"},
		{"duplicate-key", nil, 5, 5, "", "", `mapping key "markets" already defined at [4:5]`},
		{"merge-override", nil, 9, 9, "base", "flows[1].count",
			`"count" repeats a key that the merge key (<<) copies`},
		// With the written key before the merge key, goccy reports the copied value.
		{"merge-override-after", nil, 7, 24, "base", "flows[0].count",
			`"count" repeats a key that the merge key (<<) copies`},

		// Unknown keys, at every level.
		{"unknown-top-key", nil, 2, 1, "", "scenario",
			`unknown key "scenario"; allowed keys here: defaults, scenarios`},
		{"unknown-defaults-key", nil, 3, 3, "", "defaults.concurency",
			`unknown key "concurency"; allowed keys here: concurrency, isolation, markets,`},
		{"unknown-defaults-expect-contention", nil, 3, 3, "", "defaults.expect_contention",
			`unknown key "expect_contention"`},
		{"unknown-scenario-key", nil, 5, 5, "base", "colour",
			`unknown key "colour"; allowed keys here: accounts, concurrency, description,`},
		{"unknown-retry-key", nil, 6, 7, "base", "retry.max_attempt",
			`unknown key "max_attempt"; allowed keys here: base_backoff, max_attempts, max_backoff`},
		{"unknown-group-key", nil, 6, 35, "base", "accounts[0].balence",
			`unknown key "balence"; allowed keys here: balance, count, name`},
		{"unknown-flow-key", nil, 8, 37, "base", "flows[0].sides",
			`unknown key "sides"; allowed keys here: count, group, markets, price, quantity, side`},
		{"unknown-range-key", nil, 10, 26, "base", "flows[0].price.mx",
			`unknown key "mx"; allowed keys here: max, min`},
		{"yaml-tag", nil, 4, 14, "base", "markets", "YAML tags such as !!int are not supported"},
		{"key-not-string", nil, 8, 5, "base", "2", `unknown key "2"; allowed keys here: accounts,`},

		// Wrong types.
		{"type-markets-word", nil, 4, 14, "base", "markets", `"three" is not a whole number`},
		{"type-count-float", nil, 8, 17, "base", "flows[0].count", "2.5 is not a whole number"},
		{"type-quoted-number", nil, 6, 44, "base", "accounts[0].balance",
			`"100000" is a string; remove the quotes`},
		{"type-integer-too-large", nil, 6, 44, "base", "accounts[0].balance",
			"10000000000000000000 is too large; the maximum is 9223372036854775807"},
		{"type-seed-negative", nil, 5, 11, "base", "seed",
			"-1 is negative; use a whole number from 0 to 18446744073709551615"},
		{"type-seed-too-large", nil, 4, 11, "base", "seed",
			"18446744073709551616 is too large; the maximum is 18446744073709551615"},
		{"type-duration-words", nil, 6, 21, "base", "retry.base_backoff",
			`"5 seconds" is not a duration; write a number with a unit, such as 5ms or 1s`},
		{"type-duration-no-unit", nil, 6, 20, "base", "retry.max_backoff",
			"5 is not a duration; write a number with a unit"},
		{"type-bool", nil, 5, 24, "base", "expect_contention", `expected true or false, found "yes"`},
		{"type-list-for-mapping", nil, 5, 12, "base", "retry", "expected a mapping, found a list"},
		{"type-mapping-for-list", nil, 5, 15, "base", "accounts", "expected a list, found a mapping"},
		{"type-price-list", nil, 8, 44, "base", "flows[0].price",
			"expected a number such as 50 or a mapping such as {min: 45, max: 70}, found a list"},
		{"type-markets-scalar", nil, 8, 70, "base", "flows[0].markets", "expected a list, found 2"},

		// Scenario names.
		{"scenario-null", nil, 3, 5, "", "scenarios[0].name", "missing; every scenario needs a name"},
		{"name-missing", nil, 9, 5, "", "scenarios[1].name", "missing; every scenario needs a name"},
		{"name-invalid", nil, 3, 11, "", "scenarios[0].name",
			`"Proof 1" is not a valid name; use lowercase letters, digits and hyphens`},
		{"name-too-long", nil, 3, 11, "", "scenarios[0].name", "is 41 characters long; the maximum is 40"},
		{"name-duplicate", nil, 9, 11, "base", "name",
			`"base" is already the name of the scenario at line 3`},

		// Settings.
		{"markets-zero", nil, 4, 14, "base", "markets", "0 is outside 1..10000"},
		{"markets-too-many", nil, 4, 14, "base", "markets", "10001 is outside 1..10000"},
		{"defaults-markets-zero", nil, 3, 12, "", "defaults.markets", "0 is outside 1..10000"},
		{"concurrency-zero", nil, 5, 18, "base", "concurrency", "0 is outside 1..10000"},
		{"concurrency-too-high", nil, 5, 18, "base", "concurrency", "10001 is outside 1..10000"},
		{"rate-negative", nil, 5, 11, "base", "rate", "-5 is less than 0 (orders per second; 0 means no cap)"},
		{"retry-attempts-zero", nil, 6, 21, "base", "retry.max_attempts", "0 is outside 1..1000"},
		{"retry-attempts-too-many", nil, 6, 21, "base", "retry.max_attempts", "1001 is outside 1..1000"},
		{"backoff-negative", nil, 6, 21, "base", "retry.base_backoff", "-1ms is negative"},
		{"max-backoff-negative", nil, 4, 18, "", "defaults.retry.max_backoff", "-1s is negative"},
		{"max-backoff-below-base", nil, 7, 20, "base", "retry.max_backoff",
			"10ms is less than retry.base_backoff (50ms); raise max_backoff or lower base_backoff"},
		{"base-backoff-above-builtin-max", nil, 4, 19, "", "defaults.retry.base_backoff",
			"2s is more than retry.max_backoff (1s, the built-in default)"},
		{"base-backoff-above-default-max", nil, 9, 21, "base", "retry.base_backoff",
			"20ms is more than retry.max_backoff (10ms, from defaults)"},
		{"isolation-unknown", nil, 5, 16, "base", "isolation",
			`"snapshot" is not an isolation level; use repeatable-read, serializable or read-committed`},
		{"schema-unknown", testSchemas, 5, 13, "base", "schema",
			`"one-row" is not a schema variant; use one of: shared-row, per-market`},
		{"schema-empty", nil, 3, 11, "", "defaults.schema", `"" is empty; name a schema variant`},
		{"schema-builtin-rejected", testSchemas, 3, 5, "base", "schema",
			`the built-in default "distinct-rows" is not an accepted schema variant; ` +
				`set schema to one of: shared-row, per-market`},
		{"outcome-unknown", nil, 5, 14, "base", "outcome", `"maybe" is not an outcome; use yes, no or seed`},

		// Account groups.
		{"accounts-missing", nil, 3, 5, "base", "accounts", "missing; add at least one account group"},
		{"accounts-empty", nil, 5, 15, "base", "accounts", "empty; add at least one account group"},
		{"group-name-missing", nil, 6, 9, "base", "accounts[0].name", "missing; every account group needs a name"},
		{"group-name-invalid", nil, 6, 16, "base", "accounts[0].name", `"big_traders" is not a valid name`},
		{"group-name-duplicate", nil, 7, 16, "base", "accounts[1].name",
			`"traders" is already the name of accounts[0]`},
		{"group-count-zero", nil, 6, 32, "base", "accounts[0].count", "0 is outside 1..1000000"},
		{"group-count-too-large", nil, 6, 32, "base", "accounts[0].count", "1000001 is outside 1..1000000"},
		{"group-count-missing", nil, 6, 9, "base", "accounts[0].count",
			"missing; set a whole number from 1 to 1000000"},
		{"group-balance-negative", nil, 6, 44, "base", "accounts[0].balance", "-1 is outside 0..1000000000000"},
		{"group-balance-too-large", nil, 6, 44, "base", "accounts[0].balance",
			"1000000000001 is outside 0..1000000000000 (cents deposited in each account)"},
		{"group-balance-missing", nil, 6, 9, "base", "accounts[0].balance",
			"missing; set a whole number from 0 to"},
		{"deposits-overflow", nil, 15, 45, "base", "accounts[9].balance",
			"the deposits of all groups add up to more than 9223372036854775807 cents"},

		// Flows.
		{"flows-missing", nil, 3, 5, "base", "flows", "missing; add at least one order flow"},
		{"flows-empty", nil, 7, 12, "base", "flows", "empty; add at least one order flow"},
		{"flow-count-zero", nil, 8, 17, "base", "flows[0].count", "0 is outside 1..10000000"},
		{"flow-count-missing", nil, 8, 9, "base", "flows[0].count", "missing; set a whole number from 1 to"},
		{"flow-total-too-large", nil, 9, 17, "base", "flows[1].count",
			"the flows add up to 12000000 orders; the maximum is 10000000"},
		{"flow-group-undefined", nil, 9, 28, "base", "flows[0].group",
			`"tradrs" is not an account group of this scenario; defined groups: traders, whale`},
		{"flow-group-missing", nil, 8, 9, "base", "flows[0].group", "missing; name the account group"},
		{"flow-market-zero", nil, 8, 71, "base", "flows[0].markets[0]", "market 0 is outside 1..2"},
		{"flow-market-above", nil, 8, 74, "base", "flows[0].markets[1]", "market 3 is outside 1..2"},
		{"flow-market-above-defaults", nil, 9, 71, "base", "flows[0].markets[0]",
			"market 3 is outside 1..2"},
		{"flow-market-null", nil, 8, 74, "base", "flows[0].markets[1]",
			"null is not a market number; list numbers from 1 to 2"},
		{"flow-markets-empty", nil, 8, 70, "base", "flows[0].markets",
			"empty; list market numbers from 1 to 2, or remove the key"},
		{"flow-market-duplicate", nil, 8, 77, "base", "flows[0].markets[2]",
			"market 2 is already listed at flows[0].markets[0]"},
		{"flow-side-unknown", nil, 8, 43, "base", "flows[0].side", `"long" is not a side; use buy, sell or either`},
		{"price-zero", nil, 8, 44, "base", "flows[0].price",
			"0 is outside 1..99 (prices are whole cents from 1 to 99)"},
		{"price-min-zero", nil, 13, 16, "base", "flows[1].price.min",
			"0 is outside 1..99 (prices are whole cents from 1 to 99)"},
		{"price-max-too-high", nil, 8, 59, "base", "flows[0].price.max", "100 is outside 1..99"},
		{"price-min-above-max", nil, 8, 59, "base", "flows[0].price.max", "45 is less than min 70"},
		{"price-min-missing", nil, 8, 44, "base", "flows[0].price.min", "missing; set a whole number from 1 to 99"},
		{"price-missing", nil, 8, 9, "base", "flows[0].price",
			"missing; set a single value or a range, such as 50 or {min: 45, max: 70}"},
		{"quantity-zero", nil, 8, 58, "base", "flows[0].quantity", "0 is outside 1..1000000"},
		{"quantity-too-large", nil, 8, 72, "base", "flows[0].quantity.max", "1000001 is outside 1..1000000"},
		{"quantity-min-above-max", nil, 8, 72, "base", "flows[0].quantity.max", "2 is less than min 5"},
		{"quantity-missing", nil, 8, 9, "base", "flows[0].quantity", "missing; set a single value or a range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			source := tt.name + ".yaml"
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", source))
			if err != nil {
				t.Fatalf("read fixture: %v", err)
			}
			_, err = Parse(data, source, Options{Schemas: tt.schemas})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error = %v, want one matching ErrInvalid", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %T is not an *Error", err)
			}
			if e.Source != source {
				t.Errorf("Source = %q, want %q", e.Source, source)
			}
			if e.Line != tt.line || e.Column != tt.column {
				t.Errorf("position = %d:%d, want %d:%d", e.Line, e.Column, tt.line, tt.column)
			}
			if e.Scenario != tt.scenario {
				t.Errorf("Scenario = %q, want %q", e.Scenario, tt.scenario)
			}
			if e.Key != tt.key {
				t.Errorf("Key = %q, want %q", e.Key, tt.key)
			}
			if !strings.Contains(e.Message, tt.message) {
				t.Errorf("Message = %q, want it to contain %q", e.Message, tt.message)
			}
			prefix := fmt.Sprintf("%s:%d:%d: ", source, tt.line, tt.column)
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), prefix)
			}
		})
	}

	t.Run("every fixture has a case", func(t *testing.T) {
		covered := make(map[string]bool, len(tests))
		for _, tt := range tests {
			covered[tt.name] = true
		}
		files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			if name := strings.TrimSuffix(filepath.Base(file), ".yaml"); !covered[name] {
				t.Errorf("fixture %s has no case in the table", file)
			}
		}
	})
}

func TestFile_Lookup(t *testing.T) {
	f := parseFixture(t, "valid/layering.yaml", Options{})
	tests := []struct {
		name      string
		wantFound bool
	}{
		{"inherits", true},
		{"nulls", true},
		{"missing", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run("name "+tt.name, func(t *testing.T) {
			s, err := f.Lookup(tt.name)
			if tt.wantFound {
				if err != nil || s.Name != tt.name {
					t.Fatalf("Lookup(%q) = %v, %v", tt.name, s, err)
				}
				return
			}
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup(%q) error = %v, want one matching ErrNotFound", tt.name, err)
			}
			if want := "available scenarios: inherits, overrides, nulls"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not list the names (%q)", err, want)
			}
		})
	}
}

func TestError_Format(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{
			name: "every part",
			err: &Error{Source: "scenarios.yaml", Line: 14, Column: 7, Scenario: "proof",
				Key: "flows[1].price.min", Message: "0 is outside 1..99"},
			want: `scenarios.yaml:14:7: scenario "proof": flows[1].price.min: 0 is outside 1..99`,
		},
		{
			name: "outside a scenario",
			err: &Error{Source: "s.yaml", Line: 3, Column: 12, Key: "defaults.markets",
				Message: "0 is outside 1..10000"},
			want: "s.yaml:3:12: defaults.markets: 0 is outside 1..10000",
		},
		{
			name: "no position or key",
			err:  &Error{Source: "s.yaml", Message: "exceeded max depth"},
			want: "s.yaml: exceeded max depth",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) = false")
			}
		})
	}
}

func TestParseShapeLimits(t *testing.T) {
	deep := "scenarios: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n"
	quoted := "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nscenarios: '" + strings.Repeat("[", 40) + "'\n"
	tests := []struct {
		name string
		data string
		want string
	}{
		{"deep nesting", deep, "nested deeper than 32 levels"},
		{"too large", "# " + strings.Repeat("x", MaxFileSize) + "\n", "the maximum is 1048576"},
		{"brackets in comments and quotes", quoted, "scenarios"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), "shape.yaml", Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestParseByteOrderMark(t *testing.T) {
	data, err := os.ReadFile("../scenarios.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(append([]byte("\xef\xbb\xbf"), data...), "bom.yaml", Options{}); err != nil {
		t.Errorf("a file with a byte order mark: %v", err)
	}
}
