package target

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// testEndpoint is a made-up cluster endpoint. Nothing in these tests resolves or dials it.
const testEndpoint = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"

// Made-up static credentials; token generation signs with them locally.
const (
	testAccessKey = "AKIDPARITYTEST"
	testSecretKey = "parity-test-secret-key"
)

// countingCredentials returns static credentials and counts how often they are fetched.
func countingCredentials(calls *atomic.Int32) aws.CredentialsProvider {
	static := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	return aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		calls.Add(1)
		return static.Retrieve(ctx)
	})
}

// guardNetwork makes any dial or DNS lookup through cfg fail the test, so a test can show that
// building and using the config opens no connection.
func guardNetwork(t *testing.T, cfg *pgxpool.Config, dials *atomic.Int32) {
	t.Helper()
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("dial attempted in a test that must not connect")
	}
	cfg.ConnConfig.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		dials.Add(1)
		return nil, errors.New("DNS lookup attempted in a test that must not connect")
	}
}

func TestDSQL_PoolConfigSetsTokenAndTLS(t *testing.T) {
	tests := []struct {
		name, user, action string
	}{
		{"admin", "", "DbConnectAdmin"},
		{"custom role", "ledger_app", "DbConnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fetches, dials atomic.Int32
			ctx := context.Background()
			c, err := NewDSQL(ctx, DSQLOptions{Endpoint: testEndpoint, User: tt.user,
				TokenTTL: 5 * time.Minute, Credentials: countingCredentials(&fetches)})
			if err != nil {
				t.Fatalf("NewDSQL: %v", err)
			}
			cfg, err := c.PoolConfig(16)
			if err != nil {
				t.Fatalf("PoolConfig: %v", err)
			}
			guardNetwork(t, cfg, &dials)
			if n := fetches.Load(); n != 0 {
				t.Errorf("credentials fetched %d times before any connection, want 0", n)
			}

			checkDSQLConfig(t, cfg, tt.user)
			token := runBeforeConnect(t, cfg)
			checkToken(t, token, tt.action, "300")

			// A pool made from the config opens connections lazily, so creating and closing
			// one must not dial either.
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("create pool: %v", err)
			}
			pool.Close()
			if n := dials.Load(); n != 0 {
				t.Errorf("%d dials or lookups attempted, want none", n)
			}
		})
	}
}

// checkDSQLConfig checks the connection settings DSQL needs.
func checkDSQLConfig(t *testing.T, cfg *pgxpool.Config, user string) {
	t.Helper()
	cc := cfg.ConnConfig
	if user == "" {
		user = "admin"
	}
	if cc.Host != testEndpoint || cc.Port != 5432 || cc.Database != "postgres" || cc.User != user {
		t.Errorf("connection %s@%s:%d/%s, want %s@%s:5432/postgres",
			cc.User, cc.Host, cc.Port, cc.Database, user, testEndpoint)
	}
	if cc.Password != "" {
		t.Error("password set before BeforeConnect ran")
	}
	if cc.TLSConfig == nil {
		t.Fatal("TLS not configured")
	}
	if cc.TLSConfig.ServerName != testEndpoint || cc.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS ServerName %q, InsecureSkipVerify %v; want %q and full verification",
			cc.TLSConfig.ServerName, cc.TLSConfig.InsecureSkipVerify, testEndpoint)
	}
	if len(cc.Fallbacks) != 0 {
		t.Errorf("%d fallback configs, want none (a fallback could skip TLS)", len(cc.Fallbacks))
	}
	if cfg.MaxConns != 16 {
		t.Errorf("MaxConns = %d, want 16", cfg.MaxConns)
	}
	if cfg.MaxConnLifetime != 55*time.Minute || cfg.MaxConnLifetimeJitter <= 0 ||
		cfg.MaxConnLifetime+cfg.MaxConnLifetimeJitter >= time.Hour {
		t.Errorf("MaxConnLifetime %v + jitter %v, want 55m plus a jitter that stays under 60m",
			cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter)
	}
}

// runBeforeConnect calls the pool's BeforeConnect hook the way pgxpool does, on a copy of the
// connection config, and returns the password it set.
func runBeforeConnect(t *testing.T, cfg *pgxpool.Config) string {
	t.Helper()
	if cfg.BeforeConnect == nil {
		t.Fatal("BeforeConnect not set")
	}
	cc := cfg.ConnConfig.Copy()
	if err := cfg.BeforeConnect(context.Background(), cc); err != nil {
		t.Fatalf("BeforeConnect: %v", err)
	}
	if cc.Password == "" {
		t.Fatal("BeforeConnect left the password empty")
	}
	return cc.Password
}

// checkToken checks that token is a presigned DSQL request for action, signed with the test
// credentials, valid for expires seconds.
func checkToken(t *testing.T, token, action, expires string) {
	t.Helper()
	host, query, ok := strings.Cut(token, "?")
	if !ok || host != testEndpoint {
		t.Fatalf("token %q does not start with %s?", token, testEndpoint)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("parse token query: %v", err)
	}
	checks := map[string]string{"Action": action, "X-Amz-Expires": expires}
	for key, want := range checks {
		if got := values.Get(key); got != want {
			t.Errorf("token %s = %q, want %q", key, got, want)
		}
	}
	if cred := values.Get("X-Amz-Credential"); !strings.HasPrefix(cred, testAccessKey+"/") ||
		!strings.Contains(cred, "/us-east-1/dsql/") {
		t.Errorf("token X-Amz-Credential = %q, want the test key for dsql in us-east-1", cred)
	}
	if values.Get("X-Amz-Signature") == "" {
		t.Error("token has no X-Amz-Signature")
	}
	if strings.Contains(token, testSecretKey) {
		t.Error("token contains the secret key")
	}
}

func TestDSQL_FreshTokenPerConnection(t *testing.T) {
	var fetches atomic.Int32
	c, err := NewDSQL(context.Background(), DSQLOptions{Endpoint: testEndpoint,
		Credentials: countingCredentials(&fetches)})
	if err != nil {
		t.Fatalf("NewDSQL: %v", err)
	}
	cfg, err := c.PoolConfig(4)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	first := runBeforeConnect(t, cfg)
	time.Sleep(1100 * time.Millisecond) // SigV4 dates have one-second resolution.
	second := runBeforeConnect(t, cfg)
	if first == second {
		t.Error("two connections got the same token, want a fresh one each")
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("credentials fetched %d times for 2 tokens, want 2", n)
	}
	checkToken(t, second, "DbConnectAdmin", "900")
}

func TestDSQL_DefaultCredentialChain(t *testing.T) {
	// Only the environment provides credentials, and the instance metadata service is off, so
	// the SDK's chain resolves without any network request.
	t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/parity/aws-config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/parity/aws-credentials")
	c, err := NewDSQL(context.Background(), DSQLOptions{Endpoint: testEndpoint})
	if err != nil {
		t.Fatalf("NewDSQL: %v", err)
	}
	cfg, err := c.PoolConfig(1)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	checkToken(t, runBeforeConnect(t, cfg), "DbConnectAdmin", "900")
}

func TestDSQL_DescribeShowsNoSecret(t *testing.T) {
	var fetches atomic.Int32
	c, err := NewDSQL(context.Background(), DSQLOptions{Endpoint: testEndpoint,
		Credentials: countingCredentials(&fetches)})
	if err != nil {
		t.Fatalf("NewDSQL: %v", err)
	}
	cfg, err := c.PoolConfig(1)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	token := runBeforeConnect(t, cfg)
	got := c.Describe()
	want := "Aurora DSQL admin@" + testEndpoint + ":5432/postgres (region us-east-1)"
	if got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	for _, secret := range []string{token, testSecretKey, testAccessKey, "X-Amz-Signature"} {
		if strings.Contains(got, secret) {
			t.Errorf("Describe() contains %q", secret)
		}
	}
	if c.Kind() != DSQL {
		t.Errorf("Kind() = %v, want dsql", c.Kind())
	}
}

func TestNewDSQL_Endpoints(t *testing.T) {
	const clusterID = "abcdefghijklmnopqrstuvwxyz"
	tests := []struct {
		name, endpoint, region string
		wantHost, wantRegion   string
	}{
		{"full endpoint", testEndpoint, "", testEndpoint, "us-east-1"},
		{"full endpoint and same region", testEndpoint, "us-east-1", testEndpoint, "us-east-1"},
		{"upper case", strings.ToUpper(testEndpoint), "", testEndpoint, "us-east-1"},
		{"cluster id and region", clusterID, "eu-west-2",
			clusterID + ".dsql.eu-west-2.on.aws", "eu-west-2"},
		{"suffixed dsql label", clusterID + ".dsql-x1y2.ap-northeast-1.on.aws", "",
			clusterID + ".dsql-x1y2.ap-northeast-1.on.aws", "ap-northeast-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, region, err := resolveDSQLEndpoint(tt.endpoint, tt.region)
			if err != nil {
				t.Fatalf("resolveDSQLEndpoint: %v", err)
			}
			if host != tt.wantHost || region != tt.wantRegion {
				t.Errorf("got %s in %s, want %s in %s", host, region, tt.wantHost, tt.wantRegion)
			}
		})
	}
}

func TestNewDSQL_InvalidOptions(t *testing.T) {
	var fetches atomic.Int32
	creds := countingCredentials(&fetches)
	tests := []struct {
		name  string
		opts  DSQLOptions
		wants []string // substrings of the error
	}{
		{"missing endpoint", DSQLOptions{}, []string{"missing DSQL endpoint", ".dsql."}},
		{"scheme", DSQLOptions{Endpoint: "https://" + testEndpoint},
			[]string{"https://" + testEndpoint, "without a scheme"}},
		{"port", DSQLOptions{Endpoint: testEndpoint + ":5432"}, []string{"without a user, port"}},
		{"path", DSQLOptions{Endpoint: testEndpoint + "/postgres"}, []string{"or path"}},
		{"not DSQL", DSQLOptions{Endpoint: "db.example.com"}, []string{"db.example.com", "--dsn"}},
		{"cluster id without region", DSQLOptions{Endpoint: "abcdefghijklmnopqrstuvwxyz"},
			[]string{"missing AWS region", "abcdefghijklmnopqrstuvwxyz"}},
		{"region mismatch", DSQLOptions{Endpoint: testEndpoint, Region: "eu-west-1"},
			[]string{`"eu-west-1" does not match`, "us-east-1"}},
		{"bad region", DSQLOptions{Endpoint: testEndpoint, Region: "US East"},
			[]string{`invalid AWS region "US East"`}},
		{"negative TTL", DSQLOptions{Endpoint: testEndpoint, TokenTTL: -time.Minute},
			[]string{"invalid DSQL token lifetime -1m0s"}},
		{"sub-second TTL", DSQLOptions{Endpoint: testEndpoint, TokenTTL: time.Millisecond},
			[]string{"invalid DSQL token lifetime 1ms"}},
		{"TTL over a week", DSQLOptions{Endpoint: testEndpoint, TokenTTL: 8 * 24 * time.Hour},
			[]string{"invalid DSQL token lifetime 192h0m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Credentials = creds
			_, err := NewDSQL(context.Background(), tt.opts)
			if err == nil {
				t.Fatal("NewDSQL succeeded, want an error")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
	if n := fetches.Load(); n != 0 {
		t.Errorf("credentials fetched %d times while validating, want 0", n)
	}
}

func TestDSQL_TokenErrorNamesRole(t *testing.T) {
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials in this test")
	})
	c, err := NewDSQL(context.Background(), DSQLOptions{Endpoint: testEndpoint,
		User: "ledger_app", Credentials: failing})
	if err != nil {
		t.Fatalf("NewDSQL: %v", err)
	}
	cfg, err := c.PoolConfig(1)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	err = cfg.BeforeConnect(context.Background(), &pgx.ConnConfig{})
	if err == nil || !strings.Contains(err.Error(), "ledger_app") ||
		!strings.Contains(err.Error(), "no credentials in this test") {
		t.Errorf("BeforeConnect error = %v, want one naming the role and the cause", err)
	}
}
