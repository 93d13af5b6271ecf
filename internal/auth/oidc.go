package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// asymmetricAlgs are the signature algorithms an OIDC verifier may accept.
// Symmetric (HS*) algorithms and "none" are never among them: anyone who
// knows the issuer's public key could forge an HS256 token with it.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// OIDCConfig configures an OIDC verifier. Only Audience is required.
type OIDCConfig struct {
	// Issuer is the token issuer; default GitHubIssuer.
	Issuer string
	// Audience is the aud the CI job requests for SMEK; tokens minted for
	// other services are refused.
	Audience string
	// Algorithms are the accepted signature algorithms; default RS256 and
	// ES256.
	Algorithms []string
	// ClockSkew is the tolerance of the exp, nbf and iat checks; default 1
	// minute.
	ClockSkew time.Duration
	// HTTPClient fetches discovery and keys; default a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// JWKSURL, when set, skips discovery and fetches keys from there.
	JWKSURL string
	// DiscoveryRetry is how long a failed discovery is remembered before
	// the next request tries again; default 30 seconds.
	DiscoveryRetry time.Duration
	// KeyRefresh is the least time between two fetches of the issuer's
	// keys after the first; default 1 minute. A token that no cached key
	// verifies fetches them again only when the last fetch is this old, so
	// that forged tokens cannot turn into requests to the issuer.
	KeyRefresh time.Duration
	// Metrics counts the fetches of the issuer's keys; default none.
	Metrics OIDCMetrics
}

// OIDC verifies CI tokens and maps them to accounts by policy. It
// implements OIDCVerifier.
//
// It does no network I/O until the first token arrives, so that the server
// starts while the issuer is unreachable: discovery happens then. The
// issuer's keys are cached and fetched again, at most once per KeyRefresh,
// when a token does not verify with them (key rotation).
type OIDC struct {
	cfg      OIDCConfig
	policies PolicyStore
	logger   *slog.Logger
	clock    clockwork.Clock

	// mu guards verifier and retryAt.
	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	retryAt  time.Time
}

var _ OIDCVerifier = (*OIDC)(nil)

// NewOIDC checks cfg, fills in its defaults and returns a verifier. It does
// not contact the issuer.
func NewOIDC(cfg OIDCConfig, policies PolicyStore, logger *slog.Logger, clock clockwork.Clock) (*OIDC, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = GitHubIssuer
	}
	if err := validateServerIssuer(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("oidc issuer %q: %w", cfg.Issuer, err)
	}
	if strings.TrimSpace(cfg.Audience) == "" {
		return nil, errors.New("oidc audience is required: the aud CI jobs request for SMEK, such as the server's URL")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{oidc.RS256, oidc.ES256}
	}
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(asymmetricAlgs, alg) {
			return nil, fmt.Errorf("oidc algorithm %q is not allowed (allowed: %s)", alg, strings.Join(asymmetricAlgs, ", "))
		}
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.DiscoveryRetry <= 0 {
		cfg.DiscoveryRetry = 30 * time.Second
	}
	if cfg.KeyRefresh <= 0 {
		cfg.KeyRefresh = time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopOIDCMetrics{}
	}
	if policies == nil || logger == nil || clock == nil {
		return nil, errors.New("oidc: policies, logger and clock are required")
	}
	return &OIDC{
		cfg:      cfg,
		policies: policies,
		logger:   logger.With(logkey.Component, "oidc", logkey.Issuer, cfg.Issuer),
		clock:    clock,
	}, nil
}

// validateServerIssuer wants https, except on the loopback interface
// where tests run their issuers.
func validateServerIssuer(s string) error {
	if err := validateIssuer(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("want https (plain http only on the loopback interface)")
		}
	}
	return nil
}

// Issuer is the issuer whose tokens the verifier accepts.
func (o *OIDC) Issuer() string { return o.cfg.Issuer }

// Authenticate verifies rawJWT and returns the principal its best matching
// policy makes of it. A token that fails verification is EUNAUTHORIZED; a
// valid token no policy admits is EFORBIDDEN; an issuer that cannot be
// reached for discovery or keys is EUNAVAILABLE.
func (o *OIDC) Authenticate(ctx context.Context, rawJWT string) (cluster.Principal, error) {
	c, err := o.verify(ctx, rawJWT)
	if err != nil {
		return cluster.Principal{}, err
	}
	policies, err := o.policies.PoliciesForOwner(ctx, o.cfg.Issuer, c.RepositoryOwnerID)
	if err != nil {
		return cluster.Principal{}, fmt.Errorf("oidc: look up policies for owner %d: %w", c.RepositoryOwnerID, err)
	}
	p, err := MatchPolicy(policies, c)
	if err != nil {
		o.logger.InfoContext(ctx, "oidc token matches no policy", logkey.Repository, c.Repository, logkey.Reason, cluster.ErrorMessage(err))
		return cluster.Principal{}, err
	}
	o.logger.DebugContext(ctx, "oidc token admitted", logkey.Repository, c.Repository, logkey.PolicyID, p.ID, logkey.Account, p.Account.Name)
	return cluster.Principal{
		Account:         p.Account,
		AllowPrivileged: p.AllowPrivileged,
		Actor:           "oidc:" + c.Repository,
		Run:             c.RunMetadata(),
	}, nil
}

// verify checks rawJWT completely and returns its claims. The cheap checks
// (shape, algorithm, issuer, audience, times) come first, on the still
// unverified claims, so that no token for another issuer or service makes
// SMEK fetch keys; after the signature check they run again on the verified
// claims, which are the ones that count.
func (o *OIDC) verify(ctx context.Context, rawJWT string) (Claims, error) {
	t, err := splitJWT(rawJWT)
	if err != nil {
		return Claims{}, o.unauthorized(ctx, err.Error(), nil)
	}
	if !slices.Contains(o.cfg.Algorithms, t.header.Alg) {
		return Claims{}, o.unauthorized(ctx, fmt.Sprintf("the OIDC token is signed with algorithm %s; SMEK accepts %s",
			bound(t.header.Alg), strings.Join(o.cfg.Algorithms, ", ")), nil)
	}
	tc, err := parseTokenClaims(t.payload)
	if err != nil {
		return Claims{}, o.unauthorized(ctx, "the OIDC token's claims are not a valid JSON object", err)
	}
	if err := o.checkClaims(tc); err != nil {
		return Claims{}, o.unauthorized(ctx, err.Error(), nil)
	}

	v, err := o.idVerifier(ctx)
	if err != nil {
		return Claims{}, err
	}
	keyErr := new(keySetError)
	tok, err := v.Verify(context.WithValue(ctx, keySetErrorKey{}, keyErr), rawJWT)
	if err != nil {
		if keyErr.unreachable() {
			o.logger.WarnContext(ctx, "oidc keys unavailable", logkey.Reason, keyErr.err)
			return Claims{}, &cluster.Error{Code: cluster.EUNAVAILABLE,
				Message: "SMEK could not fetch the OIDC issuer's keys to verify the token; try again shortly", Err: err}
		}
		return Claims{}, o.unauthorized(ctx, "the OIDC token's signature does not verify with any key the issuer publishes", err)
	}
	var payload json.RawMessage
	if err := tok.Claims(&payload); err != nil {
		return Claims{}, o.unauthorized(ctx, "the OIDC token's claims are not a valid JSON object", err)
	}
	if tc, err = parseTokenClaims(payload); err != nil {
		return Claims{}, o.unauthorized(ctx, "the OIDC token's claims are not a valid JSON object", err)
	}
	if err := o.checkClaims(tc); err != nil {
		return Claims{}, o.unauthorized(ctx, err.Error(), nil)
	}
	c, err := tc.claims()
	if errors.Is(err, errNoOwner) {
		return Claims{}, cluster.Errorf(cluster.EFORBIDDEN, "",
			"the OIDC token names no repository owner (repository_owner_id for GitHub, namespace_id for GitLab), so no SMEK policy can admit it")
	}
	if err != nil {
		return Claims{}, o.unauthorized(ctx, "the OIDC token's "+err.Error(), nil)
	}
	return c, nil
}

// checkClaims checks issuer, audience and validity period, allowing
// ClockSkew either way.
func (o *OIDC) checkClaims(tc tokenClaims) error {
	if tc.Issuer != o.cfg.Issuer {
		return fmt.Errorf("the OIDC token was issued by %s; this server accepts tokens from %s", bound(tc.Issuer), o.cfg.Issuer)
	}
	if !tc.Audience.contains(o.cfg.Audience) {
		return fmt.Errorf("the OIDC token's audience is not %q; request the token with that audience", o.cfg.Audience)
	}
	now, skew := o.clock.Now(), o.cfg.ClockSkew
	switch {
	case tc.Expiry == nil:
		return errors.New("the OIDC token has no expiry (exp)")
	case now.After(tc.Expiry.Add(skew)):
		return fmt.Errorf("the OIDC token expired at %s", tc.Expiry.Format(time.RFC3339))
	case tc.NotBefore != nil && now.Add(skew).Before(tc.NotBefore.Time):
		return fmt.Errorf("the OIDC token is not valid before %s", tc.NotBefore.Format(time.RFC3339))
	case tc.IssuedAt != nil && now.Add(skew).Before(tc.IssuedAt.Time):
		return fmt.Errorf("the OIDC token was issued in the future (%s)", tc.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

// unauthorized logs why a token was refused and returns the EUNAUTHORIZED
// error. msg is shown to the client; detail only goes to the log.
func (o *OIDC) unauthorized(ctx context.Context, msg string, detail error) error {
	if detail != nil {
		o.logger.DebugContext(ctx, "oidc token refused", logkey.Reason, msg, "detail", detail.Error())
	} else {
		o.logger.DebugContext(ctx, "oidc token refused", logkey.Reason, msg)
	}
	return &cluster.Error{Code: cluster.EUNAUTHORIZED, Message: msg, Err: detail}
}
