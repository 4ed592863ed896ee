package target

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestParseDSN_ErrorHidesPassword(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		secrets []string // none may appear in the error
		problem string   // the error must name this
	}{
		{"URL with bad port", "postgres://alice:s3cretPW@db.example:notaport/ledger",
			[]string{"s3cretPW"}, "invalid port"},
		{"URL with bad sslmode", "postgres://alice:s3cretPW@db.example/ledger?sslmode=bogus",
			[]string{"s3cretPW"}, "sslmode is invalid"},
		{"URL with slash in password", "postgres://alice:s3cret/PW@db.example:5432/ledger",
			[]string{"s3cret/PW", "s3cret"}, "invalid DSN"},
		{"URL with bad escape in password", "postgres://alice:s3cret%zzPW@db.example/ledger",
			[]string{"s3cret%zzPW", "s3cret"}, "invalid DSN"},
		{"URL with password in query", "postgres://alice@db.example/ledger?password=s3cretPW&port=x",
			[]string{"s3cretPW"}, "invalid DSN"},
		{"keyword/value with bad port", "host=db.example password=s3cretPW port=abc",
			[]string{"s3cretPW"}, "invalid port"},
		{"keyword/value with quoted password", "host=db.example password='s3cret PW' sslmode=nope",
			[]string{"s3cret PW", "s3cret"}, "sslmode is invalid"},
		{"keyword/value with unquoted space", "host=db.example password=s3cret PWtail x=y",
			[]string{"s3cret", "PWtail"}, `missing "="`},
		{"keyword/value with open quote", "host=db.example password='s3cretPW",
			[]string{"s3cretPW"}, "unterminated quoted string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDSN(tt.dsn)
			if err == nil {
				t.Fatalf("ParseDSN(%q) succeeded, want an error", tt.dsn)
			}
			msg := err.Error()
			for _, secret := range tt.secrets {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the password piece %q", msg, secret)
				}
			}
			if !strings.Contains(msg, tt.problem) {
				t.Errorf("error %q does not name the problem %q", msg, tt.problem)
			}
			if !strings.Contains(msg, "postgres://user:password@host:5432/database") {
				t.Errorf("error %q does not show the accepted forms", msg)
			}
		})
	}
}

func TestParseDSN_Empty(t *testing.T) {
	for _, dsn := range []string{"", "   "} {
		if _, err := ParseDSN(dsn); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("ParseDSN(%q) error = %v, want one saying it is empty", dsn, err)
		}
	}
}

func TestDSN_DescribeShowsNoSecret(t *testing.T) {
	tests := []struct {
		name, dsn, want string
	}{
		{"URL", "postgres://alice:s3cretPW@db.example:6543/ledger?sslmode=disable",
			"alice@db.example:6543/ledger"},
		{"keyword/value", "host=db.example port=5433 user=bob password=s3cretPW dbname=books",
			"bob@db.example:5433/books"},
		{"IPv6", "postgres://carol:s3cretPW@[::1]:5432/ledger", "carol@[::1]:5432/ledger"},
		{"Unix socket", "host=/run/postgresql user=dave password=s3cretPW dbname=ledger",
			"dave@/run/postgresql:5432/ledger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDSN(tt.dsn)
			if err != nil {
				t.Fatalf("ParseDSN: %v", err)
			}
			if got := d.Describe(); got != tt.want {
				t.Errorf("Describe() = %q, want %q", got, tt.want)
			}
			if d.Kind() != PostgreSQL {
				t.Errorf("Kind() = %v, want postgresql", d.Kind())
			}
		})
	}
}

func TestDSN_PoolConfigIsFreshCopy(t *testing.T) {
	d, err := ParseDSN("postgres://alice:s3cretPW@db.example/ledger?pool_max_conns=2")
	if err != nil {
		t.Fatalf("ParseDSN: %v", err)
	}
	if _, err := d.PoolConfig(0); err == nil {
		t.Error("PoolConfig(0) succeeded, want an error")
	}
	first, err := d.PoolConfig(8)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	if first.MaxConns != 8 {
		t.Errorf("MaxConns = %d, want 8 (the argument wins over pool_max_conns)", first.MaxConns)
	}
	first.ConnConfig.Host = "changed.example"
	second, err := d.PoolConfig(8)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	if second.ConnConfig.Host != "db.example" {
		t.Errorf("second config has host %q after the first was changed, want db.example",
			second.ConnConfig.Host)
	}
	if second.ConnConfig.Password != "s3cretPW" {
		t.Error("pool config lost the password from the DSN")
	}
}

func TestDSN_ConnectsToLocalServerOverTCP(t *testing.T) {
	tempRoot(t)
	l := startLocal(t, LocalOptions{})
	dsn := fmt.Sprintf("postgres://parity:%s@127.0.0.1:%d/parity?sslmode=disable",
		l.password, l.Port())
	d, err := ParseDSN(dsn)
	if err != nil {
		t.Fatalf("ParseDSN: %v", err)
	}
	if want := fmt.Sprintf("parity@127.0.0.1:%d/parity", l.Port()); d.Describe() != want {
		t.Errorf("Describe() = %q, want %q", d.Describe(), want)
	}
	cfg, err := d.PoolConfig(2)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	ctx := context.Background()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	defer pool.Close()
	var addr string
	if err := pool.QueryRow(ctx, "SELECT host(inet_server_addr())").Scan(&addr); err != nil {
		t.Fatalf("query server address: %v", err)
	}
	if addr != "127.0.0.1" {
		t.Errorf("connected to server address %s, want 127.0.0.1 (TCP)", addr)
	}
}
