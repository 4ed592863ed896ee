package target

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DSN is an existing PostgreSQL-compatible server given by a connection string. The harness
// neither starts nor stops it.
type DSN struct {
	config *pgxpool.Config // parsed once; PoolConfig hands out copies
}

// dsnForms shows the two accepted forms in error messages.
const dsnForms = "use a URL such as postgres://user:password@host:5432/database " +
	"or keyword/value pairs such as \"host=localhost port=5432 user=u dbname=d\""

// ParseDSN parses a connection string in URL or keyword/value form, as libpq and pgx accept
// it; the PG* environment variables fill what it leaves out. The error for an invalid DSN names
// the problem but never contains the password: unlike pgx's own error, it does not wrap the
// parse error, because pgx keeps the raw connection string in it.
func ParseDSN(dsn string) (*DSN, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, fmt.Errorf("invalid DSN: it is empty; %s", dsnForms)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("invalid DSN: %s; %s", redactDSNError(dsn, err), dsnForms)
	}
	return &DSN{config: cfg}, nil
}

// Kind returns PostgreSQL.
func (d *DSN) Kind() Kind { return PostgreSQL }

// PoolConfig returns a fresh pgxpool config for at most maxConns connections, which replaces any
// pool_max_conns in the DSN.
func (d *DSN) PoolConfig(maxConns int) (*pgxpool.Config, error) {
	if err := checkMaxConns(maxConns); err != nil {
		return nil, err
	}
	cfg := d.config.Copy()
	cfg.MaxConns = int32(maxConns)
	return cfg, nil
}

// Describe returns user@host:port/database, without the password or any other setting.
func (d *DSN) Describe() string {
	c := d.config.ConnConfig
	return fmt.Sprintf("%s@%s/%s", c.User, hostPort(c.Host, c.Port), c.Database)
}

// hostPort joins host and port, bracketing an IPv6 address.
func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "/") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// Close does nothing: the server belongs to someone else.
func (d *DSN) Close(ctx context.Context) error { return nil }

// redactDSNError returns the text of a pgx parse error without the connection string and with
// every candidate password replaced by xxxxx. pgx masks passwords in its own message only on a
// best-effort basis, and a malformed DSN can put a password where pgx does not expect one. So
// the candidates here are taken generously from the raw text.
func redactDSNError(dsn string, err error) string {
	text := err.Error()
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		// A copy without the connection string formats as "cannot parse ``: reason".
		bare := *parseErr
		bare.ConnString = ""
		text = strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	}
	secrets := passwordCandidates(dsn)
	// Longest first, so that a shorter candidate inside a longer one cannot leave a remainder.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		text = strings.ReplaceAll(text, s, "xxxxx")
	}
	return text
}

// Patterns for passwordCandidates. A keyword/value password runs to the next "key=" or the end,
// because a writer who left a space in a password unquoted still meant all of it as the password.
var (
	kvPasswordPattern = regexp.MustCompile(
		`(?i)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'?|.*?)(?:\s+[a-z_]+\s*=|$)`)
	queryPasswordPattern = regexp.MustCompile(`(?i)(?:ssl)?pass(?:word|%77ord)=([^&#]*)`)
)

// passwordCandidates returns every substring of dsn that may be a password: the URL userinfo
// password, password and sslpassword values in both forms, their percent-decoded and unquoted
// spellings, and their space-separated pieces.
func passwordCandidates(dsn string) []string {
	var found []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		found = append(found, s, strings.Trim(s, "'"))
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if decoded, err := unescape(s); err == nil {
				found = append(found, decoded)
			}
		}
		found = append(found, strings.Fields(strings.Trim(s, "'"))...)
	}
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, password, ok := strings.Cut(rest[:at], ":"); ok {
				add(password)
			}
		}
	}
	for _, m := range kvPasswordPattern.FindAllStringSubmatch(dsn, -1) {
		add(m[1])
	}
	for _, m := range queryPasswordPattern.FindAllStringSubmatch(dsn, -1) {
		add(m[1])
	}
	return slices.DeleteFunc(found, func(s string) bool { return s == "" })
}
