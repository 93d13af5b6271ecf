package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

var b64 = base64.RawURLEncoding

// compact assembles a JWS from a header, claims and a signature without
// any checks: the shape of a forged token.
func compact(header, claims map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64.EncodeToString(h) + "." + b64.EncodeToString(c) + "." + b64.EncodeToString(sig)
}

// hs256WithPublicKey is the key-confusion attack: an HS256 token whose
// HMAC key is the issuer's public RSA key, which is public.
func hs256WithPublicKey(claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(rsaKey1().Public())
	if err != nil {
		panic(err)
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	h, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// flipSignature changes one bit in the middle of a token's signature.
func flipSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil {
		panic(err)
	}
	sig[len(sig)/2] ^= 1
	return tok[:i+1] + b64.EncodeToString(sig)
}

// swapPayload keeps a token's header and signature but replaces its claims.
func swapPayload(tok string, claims map[string]any) string {
	parts := strings.Split(tok, ".")
	c, _ := json.Marshal(claims)
	return parts[0] + "." + b64.EncodeToString(c) + "." + parts[2]
}

// TestOIDCRefusesBadTokens has one case per attack in the issue's "Bad
// input" list, and more. Every case must be EUNAUTHORIZED with a reason
// that names the problem and leaks no internals.
func TestOIDCRefusesBadTokens(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	good := e.githubClaims()
	other := newTestIssuer(t, signingKey{kid: "other-1", alg: oidc.RS256, priv: rsaRogue()})
	rogue := signingKey{kid: "rsa-1", alg: oidc.RS256, priv: rsaRogue()}
	valid := sign(rsa1(), good)

	cases := []struct {
		name, token, reason string
	}{
		{"wrong audience", sign(rsa1(), with(good, map[string]any{"aud": "https://github.com/octo-org"})), "audience is not"},
		{"wrong audience in a list", sign(rsa1(), with(good, map[string]any{"aud": []string{"a", "b"}})), "audience is not"},
		{"no audience", sign(rsa1(), with(good, map[string]any{"aud": nil})), "audience is not"},
		{"wrong issuer", sign(rsa1(), with(good, map[string]any{"iss": auth.GitHubIssuer})), "issued by https://token.actions.githubusercontent.com"},
		{"another issuer's token", sign(signingKey{kid: "other-1", alg: oidc.RS256, priv: rsaRogue()}, with(good, map[string]any{"iss": other.URL()})), "issued by " + other.URL()},
		{"expired", sign(rsa1(), with(good, map[string]any{"exp": t0.Add(-2 * time.Minute).Unix()})), "expired at 2026-03-01T11:58:00Z"},
		{"no expiry", sign(rsa1(), with(good, map[string]any{"exp": nil})), "no expiry"},
		{"not yet valid", sign(rsa1(), with(good, map[string]any{"nbf": t0.Add(2 * time.Minute).Unix()})), "not valid before 2026-03-01T12:02:00Z"},
		{"issued in the future", sign(rsa1(), with(good, map[string]any{"nbf": nil, "iat": t0.Add(time.Hour).Unix()})), "issued in the future"},
		{"bad signature", flipSignature(valid), "signature does not verify"},
		{"tampered claims", swapPayload(valid, with(good, map[string]any{"repository_owner_id": "66"})), "signature does not verify"},
		{"forged with the issuer's key id", sign(rogue, good), "signature does not verify"},
		{"unknown key id", sign(signingKey{kid: "rsa-9", alg: oidc.RS256, priv: rsaRogue()}, good), "signature does not verify"},
		{"ECDSA signature under an RSA key id", sign(signingKey{kid: "rsa-1", alg: oidc.ES256, priv: ecKey1()}, good), "signature does not verify"},
		{"alg none", compact(map[string]any{"alg": "none", "typ": "JWT"}, good, nil), "algorithm none"},
		{"alg none with a key id", compact(map[string]any{"alg": "none", "kid": "rsa-1"}, good, []byte("x")), "algorithm none"},
		{"HS256 with the public key", hs256WithPublicKey(good), "algorithm HS256"},
		{"empty alg", compact(map[string]any{"alg": "", "kid": "rsa-1"}, good, []byte("x")), "header"},
		{"malformed: one part", "eyJhbGciOiJSUzI1NiJ9", "not a well-formed JWT"},
		{"malformed: two parts", "eyJhbGciOiJSUzI1NiJ9.e30", "not a well-formed JWT"},
		{"malformed: four parts", valid + ".e30", "not a well-formed JWT"},
		{"malformed: empty parts", "..", "not a well-formed JWT"},
		{"malformed: not base64", "eyJhbGciOiJSUzI1NiJ9.$$$.abc", "not a well-formed JWT"},
		{"malformed: padded base64", strings.Replace(valid, ".", "=.", 1), "not a well-formed JWT"},
		{"malformed: JSON serialization", `{"payload":"e30","signatures":[]}`, "not a well-formed JWT"},
		{"malformed: header not JSON", b64.EncodeToString([]byte("RS256")) + ".e30.e30", "header"},
		{"malformed: claims not an object", compact(map[string]any{"alg": "RS256"}, nil, []byte("x")), "claims"},
		{"malformed: exp a string", sign(rsa1(), with(good, map[string]any{"exp": "tomorrow"})), "claims"},
		{"malformed: owner id an object", sign(rsa1(), with(good, map[string]any{"repository_owner_id": map[string]any{"id": 65}})), "claims"},
		{"owner id not a number", sign(rsa1(), with(good, map[string]any{"repository_owner_id": "sixty-five"})), "repository_owner_id is not a positive integer"},
		{"oversized", sign(rsa1(), with(good, map[string]any{"pad": strings.Repeat("x", 9<<10)})), "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.v.Authenticate(context.Background(), tc.token)
			wantCode(t, err, cluster.EUNAUTHORIZED)
			if p != (cluster.Principal{}) {
				t.Errorf("got principal %+v with the error, want none", p)
			}
			msg := cluster.ErrorMessage(err)
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("got reason %q, want it to contain %q", msg, tc.reason)
			}
			for _, leak := range []string{"oidc:", "go-jose", "square", "failed", "fetching", "/keys", "rsa-1", tc.token} {
				if strings.Contains(msg, leak) {
					t.Errorf("reason %q leaks %q", msg, leak)
				}
			}
		})
	}
	if _, err := e.v.Authenticate(context.Background(), valid); err != nil {
		t.Fatalf("the untampered token: %v", err)
	}
}

// TestOIDCClockSkew checks that the validity period is enforced with the
// configured tolerance, on the injected clock.
func TestOIDCClockSkew(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{ClockSkew: 30 * time.Second})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	tok := sign(rsa1(), with(e.githubClaims(), map[string]any{
		"nbf": t0.Add(20 * time.Second).Unix(), "iat": t0.Add(20 * time.Second).Unix(), "exp": t0.Add(5 * time.Minute).Unix()}))
	ctx := context.Background()

	if _, err := e.v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("20s before nbf, within the 30s skew: %v", err)
	}
	e.clock.Advance(5*time.Minute + 29*time.Second)
	if _, err := e.v.Authenticate(ctx, tok); err != nil {
		t.Fatalf("29s after exp, within the skew: %v", err)
	}
	e.clock.Advance(2 * time.Second)
	_, err := e.v.Authenticate(ctx, tok)
	wantCode(t, err, cluster.EUNAUTHORIZED)

	e2 := newEnv(t, auth.OIDCConfig{ClockSkew: 10 * time.Second})
	e2.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	tok2 := sign(rsa1(), with(e2.githubClaims(), map[string]any{"nbf": t0.Add(20 * time.Second).Unix()}))
	_, err = e2.v.Authenticate(ctx, tok2)
	wantCode(t, err, cluster.EUNAUTHORIZED)
}

// TestOIDCAlgorithmsAreConfigurable refuses ES256 when only RS256 is
// allowed.
func TestOIDCAlgorithmsAreConfigurable(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{Algorithms: []string{oidc.RS256}})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	_, err := e.v.Authenticate(context.Background(), sign(ec1(), e.githubClaims()))
	wantCode(t, err, cluster.EUNAUTHORIZED)
	if _, err := e.v.Authenticate(context.Background(), sign(rsa1(), e.githubClaims())); err != nil {
		t.Fatal(err)
	}
}

// TestOIDCCheapChecksFetchNothing: a token for another issuer or service,
// or an expired or malformed one, is refused without contacting the issuer.
func TestOIDCCheapChecksFetchNothing(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	good := e.githubClaims()
	for _, tok := range []string{
		sign(rsa1(), with(good, map[string]any{"iss": auth.GitHubIssuer})),
		sign(rsa1(), with(good, map[string]any{"aud": "other"})),
		sign(rsa1(), with(good, map[string]any{"exp": t0.Add(-time.Hour).Unix()})),
		compact(map[string]any{"alg": "none"}, good, nil),
		"a.b.c",
	} {
		_, err := e.v.Authenticate(context.Background(), tok)
		wantCode(t, err, cluster.EUNAUTHORIZED)
	}
	if d, k := e.iss.fetches(); d != 0 || k != 0 {
		t.Errorf("got %d discovery and %d key fetches, want none", d, k)
	}
}

func TestNewOIDCConfig(t *testing.T) {
	store := policyStoreFunc(nil)
	cases := []struct {
		name string
		cfg  auth.OIDCConfig
		ok   bool
	}{
		{"defaults to GitHub", auth.OIDCConfig{Audience: "smek"}, true},
		{"audience required", auth.OIDCConfig{}, false},
		{"HS256 never", auth.OIDCConfig{Audience: "smek", Algorithms: []string{"HS256"}}, false},
		{"none never", auth.OIDCConfig{Audience: "smek", Algorithms: []string{"RS256", "none"}}, false},
		{"ES384 allowed", auth.OIDCConfig{Audience: "smek", Algorithms: []string{"ES384"}}, true},
		{"plain http elsewhere", auth.OIDCConfig{Audience: "smek", Issuer: "http://gitlab.example.com"}, false},
		{"plain http on loopback", auth.OIDCConfig{Audience: "smek", Issuer: "http://127.0.0.1:8080"}, true},
		{"not a URL", auth.OIDCConfig{Audience: "smek", Issuer: "gitlab.com"}, false},
		{"GitLab", auth.OIDCConfig{Audience: "smek", Issuer: "https://gitlab.com"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewOIDC(tc.cfg, store, discardLogger(), clockwork.NewRealClock())
			if (err == nil) != tc.ok {
				t.Fatalf("got error %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && tc.cfg.Issuer == "" && v.Issuer() != auth.GitHubIssuer {
				t.Errorf("got issuer %q, want %q", v.Issuer(), auth.GitHubIssuer)
			}
		})
	}
}
