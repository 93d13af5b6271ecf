package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/logkey"
)

// OIDCMetrics receives the OIDC verifier's counts; *metrics.Metrics
// implements it.
type OIDCMetrics interface {
	// JWKSFetch counts one request for the issuer's keys; result is
	// "ok" or "error".
	JWKSFetch(issuer, result string)
}

type nopOIDCMetrics struct{}

func (nopOIDCMetrics) JWKSFetch(string, string) {}

const (
	// keysTimeout bounds one fetch of the issuer's keys.
	keysTimeout = 10 * time.Second
	// maxJWKS bounds the size of a key set document. GitHub's is 2 KiB.
	maxJWKS = 1 << 20
)

// errKeysUnavailable marks a fetch of the issuer's keys that failed: the
// token could not be checked, which is not the same as a token that does
// not verify.
var errKeysUnavailable = errors.New("the issuer's keys are unavailable")

// errNoKeyVerifies is a signature that no known key verifies.
var errNoKeyVerifies = errors.New("no key of the issuer verifies the signature")

// jwks is the issuer's key set (its jwks_uri), cached. It takes the place
// of go-oidc's RemoteKeySet, which fetches the keys again whenever a
// signature does not verify with the cached ones: a stream of forged tokens
// with the right issuer and audience would be a stream of requests to the
// issuer. Here the keys are fetched when first needed and then at most once
// per refresh interval, when a token does not verify with the cached keys;
// a token arriving sooner is checked against the cached keys alone. A key
// the issuer rotates in is picked up by the first token that needs it once
// the interval is over.
type jwks struct {
	url     string
	issuer  string
	client  *http.Client
	algs    []jose.SignatureAlgorithm
	every   time.Duration
	clock   clockwork.Clock
	metrics OIDCMetrics
	logger  *slog.Logger

	// mu guards the fields below.
	mu sync.Mutex
	// keys are the keys of the last successful fetch.
	keys []jose.JSONWebKey
	// fetchedAt is when the last fetch started, successful or not; zero
	// before the first.
	fetchedAt time.Time
	// lastErr is the error of the last fetch, nil when it succeeded.
	lastErr error
	// inflight is the fetch under way, which concurrent callers join.
	inflight *keyFetch
}

// keyFetch is one fetch of the key set; done is closed when keys and err
// are set.
type keyFetch struct {
	done chan struct{}
	keys []jose.JSONWebKey
	err  error
}

// VerifySignature implements oidc.KeySet. go-oidc's verifier has checked
// the algorithm before it calls this; the parse checks it again.
func (k *jwks) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.verify(ctx, jwt)
	if e, ok := ctx.Value(keySetErrorKey{}).(*keySetError); ok {
		e.err = err
	}
	return payload, err
}

func (k *jwks) verify(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("parse jws: %w", err)
	}
	kid := ""
	if len(jws.Signatures) > 0 {
		kid = jws.Signatures[0].Header.KeyID
	}
	if payload, ok := verifyWith(jws, kid, k.cached()); ok {
		return payload, nil
	}
	keys, err := k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	return nil, errNoKeyVerifies
}

// verifyWith tries the keys with the token's key id (every key when the
// token names none).
func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (k *jwks) cached() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// refresh returns the keys to check a token that the cached keys did not
// verify: freshly fetched if the last fetch is at least the interval ago
// (or a fetch is under way), else the cached ones, or the last fetch's
// error if it failed.
func (k *jwks) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	f := k.inflight
	if f == nil {
		if !k.fetchedAt.IsZero() && k.clock.Now().Before(k.fetchedAt.Add(k.every)) {
			keys, err := k.keys, k.lastErr
			k.mu.Unlock()
			if err != nil {
				return nil, err
			}
			k.logger.DebugContext(ctx, "oidc key refresh held back", "next_after", k.fetchedAt.Add(k.every))
			return keys, nil
		}
		f = &keyFetch{done: make(chan struct{})}
		k.inflight, k.fetchedAt = f, k.clock.Now()
		k.mu.Unlock()
		// The fetch is shared, so the request that happens to start it
		// does not cancel it for the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keysTimeout)
		keys, err := k.fetch(fctx)
		cancel()
		k.finish(ctx, f, keys, err)
		return keys, err
	}
	k.mu.Unlock()
	select {
	case <-f.done:
		return f.keys, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the issuer's keys: %w: %w", errKeysUnavailable, ctx.Err())
	}
}

// finish records the result of fetch f, before anyone waiting on it is
// answered, so that the next request sees the new keys.
func (k *jwks) finish(ctx context.Context, f *keyFetch, keys []jose.JSONWebKey, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		k.logger.WarnContext(ctx, "oidc key fetch failed", logkey.Reason, err.Error())
	} else {
		k.logger.InfoContext(ctx, "oidc keys fetched", "keys", len(keys))
	}
	k.metrics.JWKSFetch(k.issuer, result)
	k.mu.Lock()
	if err == nil {
		k.keys = keys
	}
	k.lastErr = err
	k.inflight = nil
	k.mu.Unlock()
	f.keys, f.err = keys, err
	close(f.done)
}

// fetch gets the key set document. Every failure wraps errKeysUnavailable.
func (k *jwks) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	fail := func(err error) ([]jose.JSONWebKey, error) {
		return nil, fmt.Errorf("fetch keys from %s: %w: %w", k.url, errKeysUnavailable, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := k.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("status %s", resp.Status))
	}
	if len(body) > maxJWKS {
		return fail(fmt.Errorf("key set larger than %d bytes", maxJWKS))
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fail(err)
	}
	return keys, nil
}

// parseJWKS reads a JWK set. Keys of a type or algorithm this verifier does
// not understand are skipped rather than failing the set (RFC 7517,
// section 5), as go-oidc does: issuers publish such keys next to theirs.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}
