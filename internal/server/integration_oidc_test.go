package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

const oidcAudience = "https://smek.example.com"

// ciIssuer is a CI system's OIDC issuer over HTTPS (go-oidc's oidctest:
// discovery and a JWKS with one ECDSA key).
type ciIssuer struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func startCIIssuer(t testing.TB) *ciIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidctest.Server{
		PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "ci-1", Algorithm: oidc.ES256}},
		Algorithms: []string{oidc.ES256},
	}
	is := &ciIssuer{Server: httptest.NewTLSServer(o), key: key}
	o.SetIssuer(is.URL)
	t.Cleanup(is.Close)
	return is
}

// claims are a GitHub Actions job's: a push to main of octo-org/octo-repo
// (owner 65, repository 74), ids as strings as GitHub sends them.
func (is *ciIssuer) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": is.URL, "aud": oidcAudience, "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"repository": "octo-org/octo-repo", "repository_id": "74", "repository_owner": "octo-org", "repository_owner_id": "65",
		"run_id": "8341234567", "run_attempt": "2", "ref": "refs/heads/main", "sha": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
		"event_name": "push", "actor": "octocat", "workflow_ref": "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// sign signs claims with changes applied.
func (is *ciIssuer) sign(t testing.TB, changes map[string]any) string {
	t.Helper()
	c := is.claims()
	maps.Copy(c, changes)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return oidctest.SignIDToken(is.key, "ci-1", oidc.ES256, string(b))
}

// TestIntegrationOIDC: a CI job's OIDC token is a credential of the server
// as wired: its verified claims, not the request body, become the
// cluster's run metadata in the policy's account; a token for another
// audience is 401 and one that no policy admits is 403 naming the policy
// to add. (action/oidc_e2e_test.go drives the same path through the
// action's main step; this test covers what it does not: a lying body, the
// refusals, the event log and the issuer reached over TLS with the
// configured HTTP client.)
func TestIntegrationOIDC(t *testing.T) {
	is := startCIIssuer(t)
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.OIDCIssuer = is.URL
		c.OIDCAudience = oidcAudience
		c.OIDCHTTPClient = is.Client() // trusts the issuer's test certificate
		c.OpsAddr = "127.0.0.1:0"
	}})
	t.Cleanup(func() {
		// Every token above was verified with keys fetched through the
		// wired server: the fetches are counted where the operator looks.
		_, body := call(t, "GET", smek.OpsURL()+"/metrics", "", "", "")
		if want := `smek_oidc_jwks_fetches_total{issuer="` + is.URL + `",result="ok"}`; !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	})
	if _, err := smek.DB.AddPolicy(context.Background(), auth.Policy{
		Account: cluster.Account{Name: "octo-org"}, Issuer: is.URL, RepositoryOwnerID: 65, RepositoryID: 74, Ref: "refs/heads/main",
	}); err != nil {
		t.Fatal(err)
	}
	owner := smek.Token("octo-org", smektest.TokenOptions{})

	t.Run("a valid token creates a cluster with the verified claims as run metadata", func(t *testing.T) {
		// The body claims another repository and run; the token wins. The
		// job's id, which no token carries, is kept from the body.
		body := `{"keep-cluster": false, "run": {"repository": "evil/repo", "repository-id": 1, "run-id": 2, "run-attempt": 3,
			"sha": "0000000000000000000000000000000000000000", "actor": "mallory", "event": "workflow_dispatch", "verified": true,
			"job-id": 51725241954}}`
		c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", is.sign(t, nil), body)
		want := wire.RunMetadata{
			Repository: "octo-org/octo-repo", RepositoryID: 74, RunID: 8341234567, RunAttempt: 2,
			Ref: "refs/heads/main", SHA: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4", Event: "push", Actor: "octocat",
			WorkflowRef: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main", Verified: true, JobID: 51725241954,
		}
		if c.Account != "octo-org" || c.Run == nil || !sameRun(*c.Run, want) {
			t.Fatalf("account %q run %+v, want octo-org's with %+v", c.Account, c.Run, want)
		}
		// The account's own token sees the same, and the log names the job.
		got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, owner, "")
		if got.Run == nil || !sameRun(*got.Run, want) {
			t.Errorf("stored run %+v, want %+v", got.Run, want)
		}
		evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/events", owner, "")
		byJob := false
		for _, e := range evs.Events {
			byJob = byJob || e.To == "running" && e.Cause == "api" && e.Actor == "oidc:octo-org/octo-repo"
		}
		if !byJob {
			t.Errorf("events %+v, want the create recorded as the OIDC job's", evs.Events)
		}
		// A fresh token of the same job may end it, as the post step does.
		if gone := mustJSON[wire.Cluster](t, 200, "DELETE", smek.URL+"/v1/clusters/"+c.ClusterID, is.sign(t, nil), ""); gone.ClusterStatus != "terminated" {
			t.Errorf("terminate with the job's token: %s", gone.ClusterStatus)
		}
	})

	t.Run("a token for another audience is 401", func(t *testing.T) {
		status, b := call(t, "POST", smek.URL+"/v1/clusters", is.sign(t, map[string]any{"aud": "https://other.example.com"}), `{}`, "application/json")
		p := problemOf(t, status, b, 401, "unauthorized")
		if strings.Contains(p.Detail, "eyJ") {
			t.Errorf("the answer quotes the token: %s", p.Detail)
		}
	})

	t.Run("a token of another issuer is 401", func(t *testing.T) {
		status, b := call(t, "GET", smek.URL+"/v1/clusters", is.sign(t, map[string]any{"iss": "https://token.actions.githubusercontent.com"}), "", "application/json")
		problemOf(t, status, b, 401, "unauthorized")
	})

	t.Run("a valid token without a matching policy is 403 naming the policy", func(t *testing.T) {
		// Same owner, another repository: the policy names repository 74.
		status, b := call(t, "POST", smek.URL+"/v1/clusters", is.sign(t, map[string]any{"repository_id": "75", "repository": "octo-org/other"}), `{}`, "application/json")
		p := problemOf(t, status, b, 403, "forbidden")
		for _, want := range []string{
			"no SMEK policy admits repository_owner_id 65 / repository_id 75",
			"provisioner policy add --account NAME --repository-owner-id 65 --repository-id 75",
		} {
			if !strings.Contains(p.Detail, want) {
				t.Errorf("403 detail %q lacks %q", p.Detail, want)
			}
		}
		list := mustJSON[wire.ClusterList](t, 200, "GET", smek.URL+"/v1/clusters?status=all", owner, "")
		if len(list.Clusters) > 1 {
			t.Errorf("a refused token made a cluster: %+v", list.Clusters)
		}
	})
}

// sameRun compares run metadata on the fields an OIDC token sets.
func sameRun(got, want wire.RunMetadata) bool {
	got.Job, got.RunnerName, got.PullRequest, got.InstallationID = "", "", 0, 0
	return got == want
}
