package auth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

func wantFetches(t *testing.T, iss *testIssuer, discovery, jwks int) {
	t.Helper()
	if d, k := iss.fetches(); d != discovery || k != jwks {
		t.Fatalf("got %d discovery and %d key fetches, want %d and %d", d, k, discovery, jwks)
	}
}

// TestOIDCStartsWhileIssuerIsDown: constructing the verifier contacts no
// one; a request while the issuer is down is EUNAVAILABLE, the failure is
// remembered for DiscoveryRetry, and the verifier recovers once the issuer
// is back.
func TestOIDCStartsWhileIssuerIsDown(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{DiscoveryRetry: 30 * time.Second}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	e.iss.setDown(true)
	wantFetches(t, e.iss, 0, 0)

	ctx := context.Background()
	tok := sign(rsa1(), e.githubClaims())
	_, err := e.v.Authenticate(ctx, tok)
	wantCode(t, err, cluster.EUNAVAILABLE)
	wantFetches(t, e.iss, 1, 0)

	e.clock.Advance(29 * time.Second)
	_, err = e.v.Authenticate(ctx, tok)
	wantCode(t, err, cluster.EUNAVAILABLE)
	wantFetches(t, e.iss, 1, 0)

	e.iss.setDown(false)
	e.clock.Advance(2 * time.Second)
	if _, err := e.v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("after the issuer came back: %v", err)
	}
	wantFetches(t, e.iss, 2, 1)
}

// TestOIDCKeyRotation: keys are cached; a token that no cached key
// verifies makes the verifier fetch the JWKS again, at most once per
// minute, which is how a new key (RSA or ECDSA) is picked up and a retired
// one dropped.
func TestOIDCKeyRotation(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	ctx := context.Background()
	claims := e.githubClaims()
	mustAdmit := func(k signingKey) {
		t.Helper()
		if _, err := e.v.Authenticate(ctx, sign(k, claims)); err != nil {
			t.Fatalf("token signed with %s: %v", k.kid, err)
		}
	}

	mustAdmit(rsa1())
	wantFetches(t, e.iss, 1, 1)
	mustAdmit(rsa1())
	wantFetches(t, e.iss, 1, 1) // cached

	// Within a minute of the last fetch a token with a key id the cache
	// does not know is refused from the cache, without a fetch.
	e.iss.publish(rsa1(), rsa2(), ec1())
	e.clock.Advance(59 * time.Second)
	_, err := e.v.Authenticate(ctx, sign(rsa2(), claims))
	wantCode(t, err, cluster.EUNAUTHORIZED)
	wantFetches(t, e.iss, 1, 1)

	// Once the minute is over the next such token refreshes the cache.
	e.clock.Advance(time.Second)
	mustAdmit(rsa2())
	wantFetches(t, e.iss, 1, 2)
	mustAdmit(ec1())
	mustAdmit(rsa1())
	wantFetches(t, e.iss, 1, 2) // both now cached

	// rsa-1 is retired. The next refresh (here caused by a token with a
	// key id nobody publishes) drops it from the cache before it answers.
	e.iss.publish(rsa2(), ec1())
	e.clock.Advance(time.Minute)
	_, err = e.v.Authenticate(ctx, sign(signingKey{kid: "rsa-3", alg: rsa1().alg, priv: rsaRogue()}, claims))
	wantCode(t, err, cluster.EUNAUTHORIZED)
	wantFetches(t, e.iss, 1, 3)
	_, err = e.v.Authenticate(ctx, sign(rsa1(), claims))
	wantCode(t, err, cluster.EUNAUTHORIZED)
	mustAdmit(rsa2())
	wantFetches(t, e.iss, 1, 3)
}

// TestOIDCKeysUnreachable: cached keys keep working while the issuer is
// down; a token with a new key id cannot be checked then, which is
// EUNAVAILABLE (try again), not EUNAUTHORIZED. The failed fetch counts
// against the minute like any other, so that a down issuer is not asked on
// every request either.
func TestOIDCKeysUnreachable(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	ctx := context.Background()
	claims := e.githubClaims()
	if _, err := e.v.Authenticate(ctx, sign(rsa1(), claims)); err != nil {
		t.Fatal(err)
	}

	e.iss.setDown(true)
	if _, err := e.v.Authenticate(ctx, sign(rsa1(), claims)); err != nil {
		t.Fatalf("cached key while the issuer is down: %v", err)
	}
	wantFetches(t, e.iss, 1, 1)
	e.clock.Advance(time.Minute)
	_, err := e.v.Authenticate(ctx, sign(rsa2(), claims))
	wantCode(t, err, cluster.EUNAVAILABLE)
	// (The HTTP client may retry a dropped request once: count attempts.)
	_, attempts := e.iss.fetches()
	if attempts < 2 {
		t.Fatalf("got %d key fetches, want the failed one after the first", attempts)
	}

	e.iss.publish(rsa1(), rsa2())
	e.iss.setDown(false)
	_, err = e.v.Authenticate(ctx, sign(rsa2(), claims))
	wantCode(t, err, cluster.EUNAVAILABLE)
	wantFetches(t, e.iss, 1, attempts) // the failure is remembered for the minute
	if _, err := e.v.Authenticate(ctx, sign(rsa1(), claims)); err != nil {
		t.Fatalf("cached key after a failed fetch: %v", err)
	}

	e.clock.Advance(time.Minute)
	if _, err := e.v.Authenticate(ctx, sign(rsa2(), claims)); err != nil {
		t.Fatalf("new key once the issuer is back: %v", err)
	}
	wantFetches(t, e.iss, 1, attempts+1)
}

// TestOIDCConcurrentFirstUse: requests racing on a fresh verifier all
// succeed, with one discovery.
func TestOIDCConcurrentFirstUse(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	tok := sign(rsa1(), e.githubClaims())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := e.v.Authenticate(context.Background(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if d, _ := e.iss.fetches(); d != 1 {
		t.Errorf("got %d discoveries, want 1", d)
	}
}

// TestOIDCWithoutDiscovery fetches keys from a configured JWKS URL.
func TestOIDCWithoutDiscovery(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	v, err := auth.NewOIDC(auth.OIDCConfig{Issuer: e.iss.URL(), Audience: testAudience, JWKSURL: e.iss.URL() + "/keys"},
		e.db, discardLogger(), e.clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Authenticate(context.Background(), sign(rsa1(), e.githubClaims())); err != nil {
		t.Fatal(err)
	}
	wantFetches(t, e.iss, 0, 1)
}
