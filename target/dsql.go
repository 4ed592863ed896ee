package target

import (
	"context"
	"crypto/tls"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/dsql/auth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Aurora DSQL connection facts: every cluster listens on port 5432 and has one database,
// postgres. The admin role authenticates with DbConnectAdmin tokens, every other role with
// DbConnect tokens.
const (
	dsqlPort      = 5432
	dsqlDatabase  = "postgres"
	dsqlAdminUser = "admin"
)

// Token lifetimes. A token is checked only when a connection opens, so a short one costs
// nothing. The AWS SDK's default is 15 minutes, and the maximum is one week.
const (
	defaultTokenTTL = 15 * time.Minute
	maxTokenTTL     = 7 * 24 * time.Hour
)

// DSQL closes every connection after 60 minutes. pgxpool closes a connection past its lifetime
// when it is acquired or released, or at the health check that runs once a minute, so 55
// minutes plus up to 3 minutes of jitter leaves 2 minutes for that. The jitter spreads the
// reconnects of one pool over time, because a cluster accepts only 100 new connections per
// second.
const (
	dsqlMaxConnLifetime       = 55 * time.Minute
	dsqlMaxConnLifetimeJitter = 3 * time.Minute
)

var (
	// dsqlClusterID is a bare cluster identifier: 26 lowercase letters and digits.
	dsqlClusterID = regexp.MustCompile(`^[a-z0-9]{26}$`)
	// dsqlEndpoint is a cluster endpoint, <cluster-id>.dsql.<region>.on.aws; the dsql label
	// may carry a suffix, as in dsql-abcd.
	dsqlEndpoint = regexp.MustCompile(`^[a-z0-9]+\.dsql(?:-[a-z0-9]+)?\.([a-z0-9-]+)\.on\.aws$`)
	// awsRegion is a region name such as us-east-1 or us-gov-west-1.
	awsRegion = regexp.MustCompile(`^[a-z]{2}(?:-[a-z]+)+-[0-9]+$`)
)

// DSQLOptions configures NewDSQL.
type DSQLOptions struct {
	// Endpoint is the cluster endpoint, <cluster-id>.dsql.<region>.on.aws, or a bare cluster
	// id when Region is set.
	Endpoint string
	// Region is the cluster's AWS region. Empty means the region in Endpoint.
	Region string
	// User is the database role. Empty means admin.
	User string
	// TokenTTL is how long each IAM authentication token stays valid, from 1 second to one
	// week. Zero means 15 minutes. The SDK shortens it to the credentials' own expiry.
	TokenTTL time.Duration
	// Credentials signs the tokens. Nil means the AWS SDK's default chain (environment, shared
	// files, SSO, container and instance roles), resolved once by NewDSQL.
	Credentials aws.CredentialsProvider
}

// DSQLCluster is an Amazon Aurora DSQL cluster reached with IAM authentication. It is named
// DSQLCluster rather than DSQL because the Kind constant DSQL takes that name.
type DSQLCluster struct {
	endpoint string
	region   string
	user     string
	tokenTTL time.Duration
	creds    aws.CredentialsProvider
}

// NewDSQL validates opts and resolves the credentials provider. It opens no network
// connection and fetches no credentials; the first token, made when the first connection
// opens, does.
func NewDSQL(ctx context.Context, opts DSQLOptions) (*DSQLCluster, error) {
	endpoint, region, err := resolveDSQLEndpoint(opts.Endpoint, opts.Region)
	if err != nil {
		return nil, optionsError{err}
	}
	c := &DSQLCluster{endpoint: endpoint, region: region, user: opts.User,
		tokenTTL: opts.TokenTTL, creds: opts.Credentials}
	if c.user == "" {
		c.user = dsqlAdminUser
	}
	switch {
	case c.tokenTTL == 0:
		c.tokenTTL = defaultTokenTTL
	case c.tokenTTL < time.Second || c.tokenTTL > maxTokenTTL:
		return nil, optionsError{fmt.Errorf("invalid DSQL token lifetime %v: use 1s to %v, or 0 for %v",
			opts.TokenTTL, maxTokenTTL, defaultTokenTTL)}
	}
	if c.creds == nil {
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
		if cfg.Credentials == nil {
			return nil, fmt.Errorf("load AWS configuration: no credentials provider found: " +
				"set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		c.creds = cfg.Credentials
	}
	return c, nil
}

// resolveDSQLEndpoint returns the endpoint host name and region, or an error that names the
// invalid value.
func resolveDSQLEndpoint(endpoint, region string) (string, string, error) {
	const form = "<cluster-id>.dsql.<region>.on.aws"
	host := strings.ToLower(endpoint)
	switch {
	case host == "":
		return "", "", fmt.Errorf("missing DSQL endpoint: give the cluster endpoint, %s", form)
	case strings.Contains(host, "://"):
		return "", "", fmt.Errorf("invalid DSQL endpoint %q: give the host name only, "+
			"without a scheme, as in %s", endpoint, form)
	case strings.ContainsAny(host, ":/?@"):
		return "", "", fmt.Errorf("invalid DSQL endpoint %q: give the host name only, "+
			"without a user, port or path (DSQL listens on port %d)", endpoint, dsqlPort)
	}
	if region != "" && !awsRegion.MatchString(region) {
		return "", "", fmt.Errorf("invalid AWS region %q: expected a name such as us-east-1",
			region)
	}
	if dsqlClusterID.MatchString(host) {
		if region == "" {
			return "", "", fmt.Errorf("missing AWS region for DSQL cluster id %q: set the "+
				"region, or give the full endpoint %s", endpoint, form)
		}
		return host + ".dsql." + region + ".on.aws", region, nil
	}
	m := dsqlEndpoint.FindStringSubmatch(host)
	if m == nil {
		return "", "", fmt.Errorf("invalid DSQL endpoint %q: expected %s or a 26-character "+
			"cluster id; for another PostgreSQL-compatible server use --dsn", endpoint, form)
	}
	switch {
	case region == "":
		region = m[1]
	case region != m[1]:
		return "", "", fmt.Errorf("AWS region %q does not match DSQL endpoint %q, which is in "+
			"%s: leave the region empty or correct it", region, endpoint, m[1])
	}
	if !awsRegion.MatchString(region) {
		return "", "", fmt.Errorf("invalid DSQL endpoint %q: %q is not an AWS region name",
			endpoint, region)
	}
	return host, region, nil
}

// Kind returns DSQL.
func (c *DSQLCluster) Kind() Kind { return DSQL }

// PoolConfig returns a fresh pgxpool config for at most maxConns connections. Each new
// connection gets a fresh IAM token in BeforeConnect and verifies the server's certificate
// against the system roots for the endpoint's name.
func (c *DSQLCluster) PoolConfig(maxConns int) (*pgxpool.Config, error) {
	if err := checkMaxConns(maxConns); err != nil {
		return nil, err
	}
	// pgxpool accepts only a config made by ParseConfig. The fields that matter are set below,
	// so that PG* environment variables cannot change the host, user, database or TLS.
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=%d sslmode=verify-full",
		c.endpoint, dsqlPort))
	if err != nil {
		return nil, fmt.Errorf("build DSQL pool config: %w", err)
	}
	cc := cfg.ConnConfig
	cc.Host = c.endpoint
	cc.Port = dsqlPort
	cc.User = c.user
	cc.Database = dsqlDatabase
	cc.Password = ""
	cc.TLSConfig = &tls.Config{ServerName: c.endpoint, MinVersion: tls.VersionTLS12}
	cc.Fallbacks = nil
	cfg.MaxConns = int32(maxConns)
	cfg.MaxConnLifetime = dsqlMaxConnLifetime
	cfg.MaxConnLifetimeJitter = dsqlMaxConnLifetimeJitter
	cfg.BeforeConnect = c.setToken
	return cfg, nil
}

// setToken puts a fresh IAM authentication token into the password of a connection about to
// open. Making a token is a local signature over the credentials; it sends nothing.
func (c *DSQLCluster) setToken(ctx context.Context, cc *pgx.ConnConfig) error {
	ttl := func(o *auth.TokenOptions) { o.ExpiresIn = c.tokenTTL }
	var token string
	var err error
	if c.user == dsqlAdminUser {
		token, err = auth.GenerateDBConnectAdminAuthToken(ctx, c.endpoint, c.region, c.creds, ttl)
	} else {
		token, err = auth.GenerateDbConnectAuthToken(ctx, c.endpoint, c.region, c.creds, ttl)
	}
	if err != nil {
		return fmt.Errorf("generate DSQL token for role %s in %s: %w", c.user, c.region, err)
	}
	cc.Password = token
	return nil
}

// Describe returns role@endpoint:5432/postgres and the region, without any token.
func (c *DSQLCluster) Describe() string {
	return fmt.Sprintf("Aurora DSQL %s@%s/%s (region %s)",
		c.user, hostPort(c.endpoint, dsqlPort), dsqlDatabase, c.region)
}

// Close does nothing: the cluster belongs to someone else, and pools belong to their callers.
func (c *DSQLCluster) Close(ctx context.Context) error { return nil }
