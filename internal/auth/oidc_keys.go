package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
)

// discoveryTimeout bounds one discovery request.
const discoveryTimeout = 10 * time.Second

// idVerifier returns the go-oidc verifier, discovering the issuer's key
// set URL on first use. A failed discovery is remembered for
// DiscoveryRetry, so that a down issuer is not asked on every request.
func (o *OIDC) idVerifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	unavailable := cluster.Errorf(cluster.EUNAVAILABLE, "", "SMEK cannot reach the OIDC issuer to verify the token; try again shortly")
	if o.clock.Now().Before(o.retryAt) {
		return nil, unavailable
	}
	// Discovery is not cancelled by the one request that happens to
	// trigger it.
	jwksURL := o.cfg.JWKSURL
	if jwksURL == "" {
		dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), o.cfg.HTTPClient), discoveryTimeout)
		defer cancel()
		p, err := oidc.NewProvider(dctx, o.cfg.Issuer)
		if err == nil {
			var meta struct {
				JWKSURL string `json:"jwks_uri"`
			}
			if err = p.Claims(&meta); err == nil && meta.JWKSURL == "" {
				err = errors.New("discovery document has no jwks_uri")
			}
			jwksURL = meta.JWKSURL
		}
		if err != nil {
			o.retryAt = o.clock.Now().Add(o.cfg.DiscoveryRetry)
			o.logger.WarnContext(ctx, "oidc discovery failed", logkey.Reason, err.Error())
			unavailable.Err = fmt.Errorf("discover %s: %w", o.cfg.Issuer, err)
			return nil, unavailable
		}
		o.logger.InfoContext(ctx, "oidc issuer discovered", "jwks_uri", jwksURL)
	}
	algs := make([]jose.SignatureAlgorithm, len(o.cfg.Algorithms))
	for i, a := range o.cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	keys := &jwks{
		url: jwksURL, issuer: o.cfg.Issuer, client: o.cfg.HTTPClient, algs: algs,
		every: o.cfg.KeyRefresh, clock: o.clock, metrics: o.cfg.Metrics, logger: o.logger,
	}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: o.cfg.Algorithms,
		// checkClaims checks exp, nbf and iat with the configured skew and
		// the injected clock.
		SkipExpiryCheck: true,
	})
	return o.verifier, nil
}

// keySetErrorKey carries a *keySetError in a Verify call's context: go-oidc's
// Verify flattens "the keys could not be fetched" and "no key verifies the
// signature" into one message, and the key set tells them apart here.
type keySetErrorKey struct{}

// keySetError receives the key set's error of one Verify call.
type keySetError struct{ err error }

// unreachable reports whether the keys could not be fetched, rather than a
// signature that does not verify.
func (e *keySetError) unreachable() bool {
	return errors.Is(e.err, errKeysUnavailable)
}
