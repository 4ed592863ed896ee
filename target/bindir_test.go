package target

import (
	"slices"
	"testing"
)

func TestPathVersion(t *testing.T) {
	tests := []struct {
		dir  string
		want []int
	}{
		{"/usr/lib/postgresql/15/bin", []int{15}},
		{"/usr/lib/postgresql/9.6/bin", []int{9, 6}},
		{"/usr/pgsql-16/bin", []int{16}},
		{"/opt/homebrew/opt/postgresql@17/bin", []int{17}},
		{"/usr/local/pgsql/bin", nil},
	}
	for _, tt := range tests {
		if got := pathVersion(tt.dir); !slices.Equal(got, tt.want) {
			t.Errorf("pathVersion(%q) = %v, want %v", tt.dir, got, tt.want)
		}
	}
}

func TestSortByVersion_HighestFirst(t *testing.T) {
	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/opt/homebrew/opt/postgresql@16/bin",
		"/usr/lib/postgresql/10/bin",
	}
	want := []string{
		"/opt/homebrew/opt/postgresql@16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
	}
	if got := sortByVersion(dirs); !slices.Equal(got, want) {
		t.Errorf("sortByVersion = %v, want %v", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/tmp/parity-pg-123", "/tmp/parity-pg-123"},
		{"host=/tmp/x port=5432", "'host=/tmp/x port=5432'"},
		{"it's", `'it'\''s'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestKind_String(t *testing.T) {
	tests := []struct {
		kind Kind
		want string
	}{
		{PostgreSQL, "postgresql"},
		{DSQL, "dsql"},
		{Kind(0), "Kind(0)"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.kind), got, tt.want)
		}
	}
}
