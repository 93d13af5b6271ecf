package auth_test

import (
	"context"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

// TestAuthenticatorSendsJWTsToOIDC: the bearer header path tells a JWT
// from a SMEK token by shape and hands it to the verifier.
func TestAuthenticatorSendsJWTsToOIDC(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	a := &auth.Authenticator{Tokens: e.db, OIDC: e.v}
	ctx := context.Background()
	p, err := a.Authenticate(ctx, "Bearer "+sign(rsa1(), e.githubClaims()))
	if err != nil || p.Run == nil || !p.Run.Verified {
		t.Fatalf("got %+v, %v; want a verified OIDC principal", p, err)
	}
	_, err = a.Authenticate(ctx, "Bearer "+flipSignature(sign(rsa1(), e.githubClaims())))
	wantCode(t, err, cluster.EUNAUTHORIZED)

	// Without a verifier, JWTs are simply not valid credentials.
	a.OIDC = nil
	_, err = a.Authenticate(ctx, "Bearer "+sign(rsa1(), e.githubClaims()))
	wantCode(t, err, cluster.EUNAUTHORIZED)
}

// BenchmarkOIDCAuthenticate measures a full verification with cached keys:
// parse, RS256 signature, claims, policy lookup in SQLite, matching.
func BenchmarkOIDCAuthenticate(b *testing.B) {
	for _, k := range []signingKey{rsa1(), ec1()} {
		b.Run(k.alg, func(b *testing.B) {
			e := newEnv(b, auth.OIDCConfig{})
			e.addPolicy(b, auth.Policy{RepositoryOwnerID: 65})
			tok := sign(k, e.githubClaims())
			ctx := context.Background()
			if _, err := e.v.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := e.v.Authenticate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
