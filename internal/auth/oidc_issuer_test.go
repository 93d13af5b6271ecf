package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var (
	rsaKey1  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	rsaRogue = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	ecKey1   = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// signingKey is a private key the test issuer can sign with.
type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// testIssuer is an OIDC issuer over HTTP: go-oidc's oidctest server
// (discovery at /.well-known/openid-configuration, JWKS at /keys) behind a
// lock, so that tests can rotate its keys and take it down while the
// verifier fetches, and count what was fetched.
type testIssuer struct {
	srv *httptest.Server

	// mu guards everything below.
	mu        sync.Mutex
	oidc      oidctest.Server
	published []signingKey
	down      bool
	hits      map[string]int
}

// newTestIssuer starts an issuer that publishes the given keys.
func newTestIssuer(t testing.TB, keys ...signingKey) *testIssuer {
	t.Helper()
	iss := &testIssuer{hits: map[string]int{}}
	iss.srv = httptest.NewServer(http.HandlerFunc(iss.serveHTTP))
	t.Cleanup(iss.srv.Close)
	iss.oidc.SetIssuer(iss.srv.URL)
	iss.publish(keys...)
	return iss
}

func (iss *testIssuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.hits[r.URL.Path]++
	if iss.down {
		// A dropped connection: what the client sees when the issuer is
		// unreachable.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	iss.oidc.ServeHTTP(w, r)
}

// URL is the issuer URL, the iss of its tokens.
func (iss *testIssuer) URL() string { return iss.srv.URL }

// publish replaces the keys in the JWKS.
func (iss *testIssuer) publish(keys ...signingKey) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.published = keys
	iss.oidc.PublicKeys = nil
	for _, k := range keys {
		iss.oidc.PublicKeys = append(iss.oidc.PublicKeys, oidctest.PublicKey{PublicKey: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg})
	}
}

// setDown makes the issuer drop every connection (or serve again).
func (iss *testIssuer) setDown(down bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.down = down
}

// fetches returns how often discovery and the JWKS were requested.
func (iss *testIssuer) fetches() (discovery, jwks int) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.hits["/.well-known/openid-configuration"], iss.hits["/keys"]
}

// sign signs claims with k, published or not.
func sign(k signingKey, claims map[string]any) string {
	b, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return oidctest.SignIDToken(k.priv, k.kid, k.alg, string(b))
}

func rsa1() signingKey { return signingKey{kid: "rsa-1", alg: oidc.RS256, priv: rsaKey1()} }
func rsa2() signingKey { return signingKey{kid: "rsa-2", alg: oidc.RS256, priv: rsaKey2()} }
func ec1() signingKey  { return signingKey{kid: "ec-1", alg: oidc.ES256, priv: ecKey1()} }
