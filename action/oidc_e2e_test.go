package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
)

// issuer is a fake OIDC issuer in GitHub's shape: discovery, a JWKS with
// one RSA key, RS256 tokens with GitHub's claims (ids as strings).
type issuer struct {
	*httptest.Server
	key *rsa.PrivateKey
}

func newIssuer(t testing.TB) *issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/.well-known/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks", func(w http.ResponseWriter, r *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test-key",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

// mint signs a token for aud with the claims of the simulated job.
func (is *issuer) mint(aud string) string {
	now := time.Now()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"typ": "JWT", "alg": "RS256", "kid": "test-key"}) + "." + enc(map[string]any{
		"iss": is.URL, "aud": aud, "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"repository": "octo-org/octo-repo", "repository_id": "74", "repository_owner": "octo-org", "repository_owner_id": "65",
		"run_id": "4242", "run_attempt": "2", "ref": "refs/heads/main", "sha": "ffac537e6cbbf934b08745a378932722df287a53",
		"event_name": "push", "actor": "octocat", "workflow_ref": "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, is.key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestEndToEndOIDC: a job with `id-token: write` and no token input gets a
// cluster from a real server that verifies its OIDC token, and its post
// step (with a fresh token) ends it.
func TestEndToEndOIDC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Kubernetes control planes")
	}
	is := newIssuer(t)
	srv := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) {
		c.OIDCIssuer = is.URL
		// The action's default audience: the server's origin.
		c.OIDCAudience = "http://" + c.Listener.Addr().String()
	}})
	if _, err := srv.DB.AddPolicy(t.Context(), auth.Policy{Account: cluster.Account{Name: "octo-org"}, Issuer: is.URL, RepositoryOwnerID: 65}); err != nil {
		t.Fatal(err)
	}
	srv.WaitReady(1, false)

	e := &e2e{srv: srv}
	e.runner = newRunnerWithOIDC(t, is)
	in := map[string]string{"api-url": srv.URL, "keep-cluster": "false", "wait": "2m"}

	main := e.runner.ContainerStep(in)
	var out syncBuffer
	if err := e.program(t, main, &out).run(t.Context(), nil); err != nil {
		t.Fatalf("main step: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "authenticated by oidc") {
		t.Errorf("main step did not use OIDC:\n%s", out.String())
	}
	id := main.Done().Outputs["cluster-id"]

	// The cluster belongs to the policy's account and carries the
	// verified run metadata.
	c, err := client.New(srv.URL, srv.Token("octo-org", smektest.TokenOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("the policy's account does not see cluster %s: %v", id, err)
	}
	if cl.Run == nil || !cl.Run.Verified || cl.Run.RunID != 4242 || cl.Run.RepositoryID != 74 {
		t.Errorf("run metadata = %+v, want verified from the token", cl.Run)
	}

	post := e.runner.PostStep(in)
	out = syncBuffer{}
	if err := e.program(t, post, &out).run(t.Context(), []string{"post"}); err != nil {
		t.Fatal(err)
	}
	if w := annotations(out.String(), "warning"); len(w) != 0 {
		t.Errorf("post step warnings: %q", w)
	}
	if cl, err := c.Get(t.Context(), id); err == nil && cl.ClusterStatus != "terminated" && cl.ClusterStatus != "terminating" {
		t.Errorf("after the post step cluster %s is %s", id, cl.ClusterStatus)
	}
}
