package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

const testAudience = "https://smek.example"

// t0 is the tests' wall clock; tokens are minted relative to it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a verifier wired to a test issuer and a real SQLite store.
type env struct {
	iss   *testIssuer
	db    *sqlite.DB
	v     *auth.OIDC
	clock *clockwork.FakeClock
	logs  *syncWriter
}

func newEnv(t testing.TB, cfg auth.OIDCConfig, keys ...signingKey) *env {
	t.Helper()
	if len(keys) == 0 {
		keys = []signingKey{rsa1(), ec1()}
	}
	e := &env{iss: newTestIssuer(t, keys...), clock: clockwork.NewFakeClockAt(t0), logs: &syncWriter{}}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	if cfg.Issuer == "" {
		cfg.Issuer = e.iss.URL()
	}
	if cfg.Audience == "" {
		cfg.Audience = testAudience
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.v, err = auth.NewOIDC(cfg, db, logger, e.clock); err != nil {
		t.Fatal(err)
	}
	return e
}

// addPolicy stores a policy for the test issuer.
func (e *env) addPolicy(t testing.TB, p auth.Policy) auth.Policy {
	t.Helper()
	if p.Issuer == "" {
		p.Issuer = e.iss.URL()
	}
	if p.Account.Name == "" {
		p.Account.Name = "ci"
	}
	p, err := e.db.AddPolicy(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// githubClaims returns the claims of a push to main of octo-org/octo-repo
// as GitHub Actions sends them (ids as strings), from the test issuer,
// valid from t0-1m to t0+5m.
func (e *env) githubClaims() map[string]any {
	return map[string]any{
		"jti":                   "b4b5b8a1-0000-4000-8000-000000000001",
		"sub":                   "repo:octo-org/octo-repo:ref:refs/heads/main",
		"aud":                   testAudience,
		"ref":                   "refs/heads/main",
		"sha":                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
		"repository":            "octo-org/octo-repo",
		"repository_owner":      "octo-org",
		"repository_owner_id":   "65",
		"repository_id":         "74",
		"repository_visibility": "private",
		"actor_id":              "12",
		"actor":                 "octocat",
		"run_id":                "8341234567",
		"run_number":            "10",
		"run_attempt":           "2",
		"runner_environment":    "github-hosted",
		"workflow":              "ci",
		"workflow_ref":          "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"job_workflow_ref":      "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
		"head_ref":              "",
		"base_ref":              "",
		"event_name":            "push",
		"ref_type":              "branch",
		"iss":                   e.iss.URL(),
		"nbf":                   t0.Add(-time.Minute).Unix(),
		"iat":                   t0.Add(-time.Minute).Unix(),
		"exp":                   t0.Add(5 * time.Minute).Unix(),
	}
}

// with returns a copy of claims with changes applied; a nil value deletes
// the claim.
func with(claims map[string]any, changes map[string]any) map[string]any {
	out := maps.Clone(claims)
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

func wantCode(t testing.TB, err error, code cluster.Code) {
	t.Helper()
	if got := cluster.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

func TestOIDCAdmitsGitHubToken(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	ctx := context.Background()
	limit := 3
	if _, err := e.db.EnsureAccount(ctx, "octo", sqlite.AccountLimits{MaxClusters: &limit}); err != nil {
		t.Fatal(err)
	}
	pol := e.addPolicy(t, auth.Policy{Account: cluster.Account{Name: "octo"}, RepositoryOwnerID: 65, AllowPrivileged: true})

	for _, k := range []signingKey{rsa1(), ec1()} {
		t.Run(k.alg, func(t *testing.T) {
			p, err := e.v.Authenticate(ctx, sign(k, e.githubClaims()))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.Account.ID != pol.Account.ID || p.Account.Name != "octo" || p.Account.MaxClusters != 3 {
				t.Errorf("got account %+v, want octo with max-clusters 3", p.Account)
			}
			if !p.AllowPrivileged || p.Actor != "oidc:octo-org/octo-repo" || p.TokenID != 0 || p.Service {
				t.Errorf("got principal %+v, want privileged actor oidc:octo-org/octo-repo", p)
			}
			want := cluster.RunMetadata{
				Repository: "octo-org/octo-repo", RepositoryID: 74, RunID: 8341234567, RunAttempt: 2,
				Ref: "refs/heads/main", SHA: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4", Event: "push",
				WorkflowRef: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main", Actor: "octocat", Verified: true,
			}
			if p.Run == nil || *p.Run != want {
				t.Errorf("got run %+v, want %+v", p.Run, want)
			}
		})
	}
	if strings.Contains(e.logs.String(), "eyJ") {
		t.Errorf("a token (or part of one) was logged:\n%s", e.logs)
	}
}

// TestOIDCDocsExampleClaims verifies GitHub's documented example claims
// (testdata, from github/docs, CC-BY-4.0), re-signed by the test issuer.
func TestOIDCDocsExampleClaims(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	b, err := os.ReadFile("testdata/oidc-github-docs-claims.json")
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	claims = with(claims, map[string]any{"iss": e.iss.URL(), "aud": []string{"https://github.com/octo-org", testAudience},
		"nbf": t0.Unix(), "iat": t0.Unix(), "exp": t0.Add(5 * time.Minute).Unix()})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65, RepositoryID: 74, Environment: "prod"})

	p, err := e.v.Authenticate(context.Background(), sign(rsa1(), claims))
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	// The docs' run_id is "example-run-id", not a number; the token is
	// still good, the run id unknown. With no workflow_ref the
	// job_workflow_ref names the workflow.
	want := cluster.RunMetadata{
		Repository: "octo-org/octo-repo", RepositoryID: 74, RunID: 0, RunAttempt: 2, Ref: "refs/heads/main",
		SHA: "example-sha", Event: "workflow_dispatch", Actor: "octocat",
		WorkflowRef: "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main", Verified: true,
	}
	if *p.Run != want {
		t.Errorf("got run %+v, want %+v", *p.Run, want)
	}
}

func TestOIDCPullRequestNumberFromRef(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65, Event: "pull_request"})
	claims := with(e.githubClaims(), map[string]any{"ref": "refs/pull/42/merge", "event_name": "pull_request"})
	p, err := e.v.Authenticate(context.Background(), sign(rsa1(), claims))
	if err != nil {
		t.Fatal(err)
	}
	if p.Run.PullRequest != 42 {
		t.Errorf("got pull request %d, want 42", p.Run.PullRequest)
	}
}

func TestOIDCAdmitsGitLabToken(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{Account: cluster.Account{Name: "gl"}, RepositoryOwnerID: 68413579, Ref: "refs/heads/main", Event: "push"})
	claims := map[string]any{
		"namespace_id": "68413579", "namespace_path": "org", "project_id": "46573356", "project_path": "org/repo",
		"user_id": "184239", "user_login": "user", "pipeline_id": "1519139981", "pipeline_source": "push",
		"job_id": "8222997048", "ref": "main", "ref_type": "branch", "ref_path": "refs/heads/main", "ref_protected": "true",
		"runner_id": 12270835, "runner_environment": "gitlab-hosted", "groups_direct": []string{"org"},
		"sha":               "8fe1b322a576d59fe6257052a4107df7dc1b8c78",
		"ci_config_ref_uri": "gitlab.com/org/repo//.gitlab-ci.yml@refs/heads/main",
		"sub":               "project_path:org/repo:ref_type:branch:ref:main",
		"iss":               e.iss.URL(), "aud": testAudience,
		"iat": t0.Unix(), "nbf": t0.Unix() - 5, "exp": t0.Add(time.Hour).Unix(),
	}
	p, err := e.v.Authenticate(context.Background(), sign(rsa1(), claims))
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	want := cluster.RunMetadata{Repository: "org/repo", RepositoryID: 46573356, RunID: 1519139981, Job: "8222997048",
		Ref: "refs/heads/main", SHA: "8fe1b322a576d59fe6257052a4107df7dc1b8c78", Event: "push",
		WorkflowRef: "gitlab.com/org/repo//.gitlab-ci.yml@refs/heads/main", Actor: "user", Verified: true}
	if p.Account.Name != "gl" || p.Actor != "oidc:org/repo" || *p.Run != want {
		t.Errorf("got %+v run %+v, want account gl and run %+v", p, *p.Run, want)
	}

	// Without ref_path (GitLab before 16.0) the full ref is rebuilt.
	p, err = e.v.Authenticate(context.Background(), sign(rsa1(), with(claims, map[string]any{"ref_path": nil})))
	if err != nil || p.Run.Ref != "refs/heads/main" {
		t.Errorf("without ref_path: got %v, %v; want ref refs/heads/main", p.Run, err)
	}
}

func TestOIDCForbiddenWithoutPolicy(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	ctx := context.Background()
	// A policy for another owner and one for another repository of the
	// same owner do not help.
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 66})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65, RepositoryID: 75})

	_, err := e.v.Authenticate(ctx, sign(rsa1(), e.githubClaims()))
	wantCode(t, err, cluster.EFORBIDDEN)
	msg := cluster.ErrorMessage(err)
	for _, want := range []string{
		"no SMEK policy admits repository_owner_id 65 / repository_id 74 (octo-org/octo-repo) on ref refs/heads/main (event push)",
		"provisioner policy add --account NAME --repository-owner-id 65 --repository-id 74 --ref refs/heads/main --oidc-issuer " + e.iss.URL(),
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("got message %q, want it to contain %q", msg, want)
		}
	}
}

func TestOIDCDangerousEventsNeedExplicitPolicy(t *testing.T) {
	for _, event := range []string{"pull_request_target", "workflow_run"} {
		t.Run(event, func(t *testing.T) {
			e := newEnv(t, auth.OIDCConfig{})
			ctx := context.Background()
			e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65, RepositoryID: 74})
			tok := sign(rsa1(), with(e.githubClaims(), map[string]any{"event_name": event}))

			_, err := e.v.Authenticate(ctx, tok)
			wantCode(t, err, cluster.EFORBIDDEN)
			if msg := cluster.ErrorMessage(err); !strings.Contains(msg, "--event "+event) {
				t.Errorf("got message %q, want it to name --event %s", msg, event)
			}

			e.addPolicy(t, auth.Policy{Account: cluster.Account{Name: "prt"}, RepositoryOwnerID: 65, Event: event})
			p, err := e.v.Authenticate(ctx, tok)
			if err != nil {
				t.Fatalf("with a policy naming %s: %v", event, err)
			}
			if p.Account.Name != "prt" {
				t.Errorf("got account %q, want prt", p.Account.Name)
			}
		})
	}
}

func TestOIDCTokenWithoutOwner(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	_, err := e.v.Authenticate(context.Background(), sign(rsa1(), with(e.githubClaims(), map[string]any{"repository_owner_id": nil})))
	wantCode(t, err, cluster.EFORBIDDEN)
}

func TestOIDCRemovedPolicyStopsAdmitting(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	ctx := context.Background()
	p := e.addPolicy(t, auth.Policy{RepositoryOwnerID: 65})
	tok := sign(rsa1(), e.githubClaims())
	if _, err := e.v.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RemovePolicy(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.v.Authenticate(ctx, tok)
	wantCode(t, err, cluster.EFORBIDDEN)
}

// syncWriter is a log buffer the verifier's goroutines may share.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
