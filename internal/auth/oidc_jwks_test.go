package auth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

// forgedTokens are tokens with the right issuer, audience and times whose
// signatures no published key verifies: each one would make a verifier
// that refetches on every failure ask the issuer for its keys.
func forgedTokens(e *env) []string {
	claims := e.githubClaims()
	rogue := func(kid string) signingKey { return signingKey{kid: kid, alg: oidc.RS256, priv: rsaRogue()} }
	return []string{
		sign(rogue("rsa-9"), claims),                                           // a key id nobody publishes
		sign(rogue("rsa-1"), claims),                                           // the issuer's key id, another key
		flipSignature(sign(rsa1(), claims)),                                    // a bad signature under a known key
		sign(rogue(""), claims),                                                // no key id at all
		sign(signingKey{kid: "ec-9", alg: oidc.ES256, priv: ecKey1()}, claims), // an unknown ECDSA key id
	}
}

// TestOIDCForgedTokensDoNotHammerTheIssuer is issue 13's item 4: a stream
// of forged tokens with the right iss and aud makes at most one JWKS fetch
// per minute beyond the first, sequential or concurrent, and a valid token
// is admitted from the cache all along.
func TestOIDCForgedTokensDoNotHammerTheIssuer(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	ctx := context.Background()
	valid := sign(rsa1(), e.githubClaims())
	if _, err := e.v.Authenticate(ctx, valid); err != nil {
		t.Fatal(err)
	}
	wantFetches(t, e.iss, 1, 1) // the first fetch

	e.clock.Advance(time.Minute)
	forged := forgedTokens(e)
	// 119 forged tokens over 59 seconds of injected time.
	for i := range 119 {
		_, err := e.v.Authenticate(ctx, forged[i%len(forged)])
		wantCode(t, err, cluster.EUNAUTHORIZED)
		if i%10 == 0 {
			if _, err := e.v.Authenticate(ctx, valid); err != nil {
				t.Fatalf("valid token during the stream: %v", err)
			}
		}
		e.clock.Advance(500 * time.Millisecond)
	}
	wantFetches(t, e.iss, 1, 2) // one refetch in that minute

	// A burst of concurrent forged tokens, still within the minute.
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			_, err := e.v.Authenticate(ctx, forged[i%len(forged)])
			if cluster.ErrorCode(err) != cluster.EUNAUTHORIZED {
				t.Errorf("concurrent forged token: got %v, want %s", err, cluster.EUNAUTHORIZED)
			}
		})
	}
	wg.Wait()
	wantFetches(t, e.iss, 1, 2)

	// It is a rate, not a lockout: the next minute allows the next fetch.
	e.clock.Advance(500 * time.Millisecond)
	_, err := e.v.Authenticate(ctx, forged[0])
	wantCode(t, err, cluster.EUNAUTHORIZED)
	wantFetches(t, e.iss, 1, 3)
	if _, err := e.v.Authenticate(ctx, valid); err != nil {
		t.Fatal(err)
	}
}

// fetchCounts records OIDCMetrics calls.
type fetchCounts struct {
	mu sync.Mutex
	n  map[[2]string]int
}

func (f *fetchCounts) JWKSFetch(issuer, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[[2]string]int{}
	}
	f.n[[2]string{issuer, result}]++
}

func (f *fetchCounts) get(issuer, result string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[[2]string{issuer, result}]
}

// TestOIDCCountsKeyFetches: every fetch of the issuer's keys is counted by
// issuer and result; the refetches a forged token is denied are not
// fetches.
func TestOIDCCountsKeyFetches(t *testing.T) {
	counts := &fetchCounts{}
	e := newEnv(t, auth.OIDCConfig{Metrics: counts, KeyRefresh: 30 * time.Second}, rsa1())
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	ctx := context.Background()
	iss := e.iss.URL()
	if _, err := e.v.Authenticate(ctx, sign(rsa1(), e.githubClaims())); err != nil {
		t.Fatal(err)
	}
	for _, tok := range forgedTokens(e) {
		_, err := e.v.Authenticate(ctx, tok)
		wantCode(t, err, cluster.EUNAUTHORIZED)
	}
	if ok, bad := counts.get(iss, "ok"), counts.get(iss, "error"); ok != 1 || bad != 0 {
		t.Fatalf("got %d ok and %d failed fetches, want 1 and 0", ok, bad)
	}

	e.iss.setDown(true)
	e.clock.Advance(30 * time.Second) // the configured interval
	_, err := e.v.Authenticate(ctx, sign(rsa2(), e.githubClaims()))
	wantCode(t, err, cluster.EUNAVAILABLE)
	e.iss.setDown(false)
	e.iss.publish(rsa1(), rsa2())
	e.clock.Advance(30 * time.Second)
	if _, err := e.v.Authenticate(ctx, sign(rsa2(), e.githubClaims())); err != nil {
		t.Fatal(err)
	}
	if ok, bad := counts.get(iss, "ok"), counts.get(iss, "error"); ok != 2 || bad != 1 {
		t.Fatalf("got %d ok and %d failed fetches, want 2 and 1", ok, bad)
	}
}
