package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

// FuzzAuthenticate feeds arbitrary bearer credentials through the whole
// token path (split, header, claims, signature, policy). It must never
// panic, never fail with an internal error, and never admit anything but
// the one validly signed token of the seed corpus.
func FuzzAuthenticate(f *testing.F) {
	e := newEnv(f, auth.OIDCConfig{})
	e.addPolicy(f, auth.Policy{RepositoryOwnerID: 65})
	good := e.githubClaims()
	valid := sign(rsa1(), good)

	for _, seed := range []string{
		valid,
		sign(ec1(), with(good, map[string]any{"repository_owner_id": "66"})), // valid, no policy
		flipSignature(valid),
		swapPayload(valid, with(good, map[string]any{"repository_owner_id": 65})),
		compact(map[string]any{"alg": "none"}, good, nil),
		hs256WithPublicKey(good),
		sign(rsa1(), with(good, map[string]any{"aud": []any{1, 2}})),
		sign(rsa1(), with(good, map[string]any{"exp": 1e300})),
		sign(rsa1(), with(good, map[string]any{"nbf": -1})),
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30",
		"eyJhbGciOiJSUzI1NiJ9.bnVsbA.", "eyJhbGciOiJSUzI1NiJ9.W10.",
		strings.Repeat("A", 9000) + ".e30.e30",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := e.v.Authenticate(context.Background(), token)
		if err == nil {
			if token != valid {
				t.Fatalf("admitted a token that is not the signed one: %q → %+v", token, p)
			}
			return
		}
		switch code := cluster.ErrorCode(err); code {
		case cluster.EUNAUTHORIZED, cluster.EFORBIDDEN:
		default:
			t.Fatalf("got %v (code %s), want unauthorized or forbidden", err, code)
		}
	})
}
