package auth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/smek/action/internal/cluster"
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
	if o.now().Before(o.retryAt) {
		return nil, unavailable
	}
	// The key set keeps its context for all later fetches, so it gets one
	// that carries our client and is never cancelled; discovery is not
	// cancelled by the one request that happens to trigger it either.
	base := oidc.ClientContext(context.Background(), o.cfg.HTTPClient)
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
			o.retryAt = o.now().Add(o.cfg.DiscoveryRetry)
			o.logger.WarnContext(ctx, "oidc discovery failed", logReason, err.Error())
			unavailable.Err = fmt.Errorf("discover %s: %w", o.cfg.Issuer, err)
			return nil, unavailable
		}
		o.logger.InfoContext(ctx, "oidc issuer discovered", "jwks_uri", jwksURL)
	}
	keys := &keySet{inner: oidc.NewRemoteKeySet(base, jwksURL)}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: o.cfg.Algorithms,
		// checkClaims checks exp, nbf and iat with the configured skew and
		// the injected clock.
		SkipExpiryCheck: true,
	})
	return o.verifier, nil
}

// keySet wraps go-oidc's RemoteKeySet to tell "the keys could not be
// fetched" from "no key verifies the signature": go-oidc's Verify flattens
// the two into one message.
type keySet struct{ inner oidc.KeySet }

// keySetErrorKey carries a *keySetError in a Verify call's context.
type keySetErrorKey struct{}

// keySetError receives the key set's error of one Verify call.
type keySetError struct{ err error }

func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if e, ok := ctx.Value(keySetErrorKey{}).(*keySetError); ok {
		e.err = err
	}
	return payload, err
}

// unreachable reports whether the keys could not be fetched: a transport
// failure or a timeout, rather than a signature that does not verify.
func (e *keySetError) unreachable() bool {
	if e.err == nil {
		return false
	}
	var uerr *url.Error
	return errors.As(e.err, &uerr) || errors.Is(e.err, context.DeadlineExceeded) || errors.Is(e.err, context.Canceled)
}
