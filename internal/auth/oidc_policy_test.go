package auth_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

// policyStoreFunc adapts a function to auth.PolicyStore.
type policyStoreFunc func(ctx context.Context, issuer string, ownerID int64) ([]auth.Policy, error)

func (f policyStoreFunc) PoliciesForOwner(ctx context.Context, issuer string, ownerID int64) ([]auth.Policy, error) {
	return f(ctx, issuer, ownerID)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const gitlab = "https://gitlab.com"

// pol is a GitHub policy for owner 65 with the given account and changes.
func pol(id int64, account string, change func(p *auth.Policy)) auth.Policy {
	p := auth.Policy{ID: id, Account: cluster.Account{Name: account}, Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65}
	if change != nil {
		change(&p)
	}
	return p
}

func TestMatchPolicy(t *testing.T) {
	var (
		owner     = pol(1, "owner", nil)
		repo      = pol(2, "repo", func(p *auth.Policy) { p.RepositoryID = 74 })
		repoGlob  = pol(3, "repo-glob", func(p *auth.Policy) { p.RepositoryID = 74; p.Ref = "refs/heads/*" })
		repoExact = pol(4, "repo-exact", func(p *auth.Policy) { p.RepositoryID = 74; p.Ref = "refs/heads/main" })
		env       = pol(5, "env", func(p *auth.Policy) { p.Environment = "prod" })
		prt       = pol(6, "prt", func(p *auth.Policy) { p.Event = "pull_request_target" })
		other     = pol(7, "other", func(p *auth.Policy) { p.RepositoryOwnerID = 66 })
		gl        = pol(8, "gitlab", func(p *auth.Policy) { p.Issuer = gitlab })
		push      = pol(9, "push", func(p *auth.Policy) { p.Event = "push" })
		deep      = pol(10, "deep", func(p *auth.Policy) { p.Ref = "refs/heads/**" })
		tags      = pol(11, "tags", func(p *auth.Policy) { p.Ref = "refs/tags/v*" })
		globA     = pol(12, "glob-a", func(p *auth.Policy) { p.Ref = "refs/heads/*" })
		globB     = pol(13, "glob-b", func(p *auth.Policy) { p.Ref = "refs/heads/?ain" })
		longer    = pol(14, "longer", func(p *auth.Policy) { p.Ref = "refs/heads/ma*" })
		wfRun     = pol(15, "wf-run", func(p *auth.Policy) { p.Event = "workflow_run" })
	)
	base := auth.Claims{Issuer: auth.GitHubIssuer, RepositoryOwnerID: 65, RepositoryID: 74, Repository: "octo-org/octo-repo",
		Ref: "refs/heads/main", Event: "push"}
	claims := func(change func(c *auth.Claims)) auth.Claims {
		c := base
		if change != nil {
			change(&c)
		}
		return c
	}

	cases := []struct {
		name     string
		policies []auth.Policy
		claims   auth.Claims
		want     string // account; "" for EFORBIDDEN
	}{
		{"owner only", []auth.Policy{owner}, base, "owner"},
		{"another owner", []auth.Policy{other}, base, ""},
		{"another issuer's owner with the same id", []auth.Policy{gl}, base, ""},
		{"no policies", nil, base, ""},
		{"repository", []auth.Policy{repo}, base, "repo"},
		{"another repository", []auth.Policy{repo}, claims(func(c *auth.Claims) { c.RepositoryID = 75 }), ""},
		{"repository beats owner", []auth.Policy{owner, repo}, base, "repo"},
		{"owner catches other repositories", []auth.Policy{owner, repo}, claims(func(c *auth.Claims) { c.RepositoryID = 75 }), "owner"},
		{"ref glob", []auth.Policy{repoGlob}, base, "repo-glob"},
		{"ref glob does not cross a slash", []auth.Policy{repoGlob}, claims(func(c *auth.Claims) { c.Ref = "refs/heads/feature/x" }), ""},
		{"ref glob and tags", []auth.Policy{repoGlob}, claims(func(c *auth.Claims) { c.Ref = "refs/tags/v1" }), ""},
		{"tag glob", []auth.Policy{tags}, claims(func(c *auth.Claims) { c.Ref = "refs/tags/v1.2.3" }), "tags"},
		{"trailing ** crosses slashes", []auth.Policy{deep}, claims(func(c *auth.Claims) { c.Ref = "refs/heads/feature/x" }), "deep"},
		{"trailing ** needs something below", []auth.Policy{deep}, claims(func(c *auth.Claims) { c.Ref = "refs/heads" }), ""},
		{"trailing ** and other prefixes", []auth.Policy{deep}, claims(func(c *auth.Claims) { c.Ref = "refs/tags/x" }), ""},
		{"exact ref beats glob", []auth.Policy{repoGlob, repoExact, repo}, base, "repo-exact"},
		{"glob beats any ref", []auth.Policy{repo, repoGlob}, base, "repo-glob"},
		{"longer literal prefix wins", []auth.Policy{globA, longer}, base, "longer"},
		{"equal rank: lowest id wins", []auth.Policy{globB, globA}, base, "glob-a"},
		{"environment required", []auth.Policy{env}, base, ""},
		{"environment", []auth.Policy{env}, claims(func(c *auth.Claims) { c.Environment = "prod" }), "env"},
		{"another environment", []auth.Policy{env}, claims(func(c *auth.Claims) { c.Environment = "staging" }), ""},
		{"environment beats owner", []auth.Policy{owner, env}, claims(func(c *auth.Claims) { c.Environment = "prod" }), "env"},
		{"repository beats environment", []auth.Policy{env, repoExact}, claims(func(c *auth.Claims) { c.Environment = "prod" }), "repo-exact"},
		{"environment beats ref", []auth.Policy{globA, env}, claims(func(c *auth.Claims) { c.Environment = "prod" }), "env"},
		{"event", []auth.Policy{push}, base, "push"},
		{"another event", []auth.Policy{push}, claims(func(c *auth.Claims) { c.Event = "pull_request" }), ""},
		{"event beats owner", []auth.Policy{owner, push}, base, "push"},
		{"pull_request_target refused by an owner policy", []auth.Policy{owner, repo, repoExact},
			claims(func(c *auth.Claims) { c.Event = "pull_request_target" }), ""},
		{"pull_request_target admitted when named", []auth.Policy{owner, prt},
			claims(func(c *auth.Claims) { c.Event = "pull_request_target" }), "prt"},
		{"workflow_run refused by an owner policy", []auth.Policy{owner, prt}, claims(func(c *auth.Claims) { c.Event = "workflow_run" }), ""},
		{"workflow_run admitted when named", []auth.Policy{owner, wfRun}, claims(func(c *auth.Claims) { c.Event = "workflow_run" }), "wf-run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.MatchPolicy(tc.policies, tc.claims)
			if tc.want == "" {
				wantCode(t, err, cluster.EFORBIDDEN)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want policy of account %s", err, tc.want)
			}
			if p.Account.Name != tc.want {
				t.Errorf("got policy %d of account %s, want account %s", p.ID, p.Account.Name, tc.want)
			}
		})
	}
}

func TestMatchPolicyMessages(t *testing.T) {
	c := auth.Claims{Issuer: gitlab, RepositoryOwnerID: 7, RepositoryID: 9, Repository: "g/p", Ref: "refs/heads/it's",
		Event: "push", Environment: "prod"}
	_, err := auth.MatchPolicy(nil, c)
	want := "no SMEK policy admits repository_owner_id 7 / repository_id 9 (g/p) on ref \"refs/heads/it's\" (event push, environment prod); " +
		`an operator can add one with: provisioner policy add --account NAME --repository-owner-id 7 --repository-id 9 --ref 'refs/heads/it'\''s' --oidc-issuer https://gitlab.com`
	if got := cluster.ErrorMessage(err); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	c = auth.Claims{Issuer: auth.GitHubIssuer, RepositoryOwnerID: 7, Ref: "refs/pull/1/merge", Event: "pull_request_target"}
	_, err = auth.MatchPolicy(nil, c)
	msg := cluster.ErrorMessage(err)
	if !strings.Contains(msg, "only a policy that names the event admits it") ||
		!strings.HasSuffix(msg, "--repository-owner-id 7 --ref refs/pull/1/merge --event pull_request_target") {
		t.Errorf("got %q, want it to explain pull_request_target and end with the command", msg)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := pol(0, "ci", nil)
	cases := []struct {
		name   string
		change func(p *auth.Policy)
		field  string // "" when valid
	}{
		{"valid", nil, ""},
		{"all fields", func(p *auth.Policy) {
			p.RepositoryID, p.Ref, p.Environment, p.Event, p.AllowPrivileged = 74, "refs/heads/**", "prod env", "merge_request_event", true
		}, ""},
		{"no account", func(p *auth.Policy) { p.Account.Name = " " }, "account"},
		{"no owner", func(p *auth.Policy) { p.RepositoryOwnerID = 0 }, "repository-owner-id"},
		{"negative repository", func(p *auth.Policy) { p.RepositoryID = -1 }, "repository-id"},
		{"bad glob", func(p *auth.Policy) { p.Ref = "refs/heads/[" }, "ref"},
		{"** in the middle", func(p *auth.Policy) { p.Ref = "refs/**/main" }, "ref"},
		{"long ref", func(p *auth.Policy) { p.Ref = strings.Repeat("a", 256) }, "ref"},
		{"event with upper case", func(p *auth.Policy) { p.Event = "Push" }, "event"},
		{"environment with a newline", func(p *auth.Policy) { p.Environment = "a\nb" }, "environment"},
		{"issuer not a URL", func(p *auth.Policy) { p.Issuer = "gitlab.com" }, "issuer"},
		{"issuer with a query", func(p *auth.Policy) { p.Issuer = "https://gitlab.com/?x=1" }, "issuer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			if tc.change != nil {
				tc.change(&p)
			}
			err := p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			wantCode(t, err, cluster.EINVALID)
			var ae *cluster.Error
			if e, ok := err.(*cluster.Error); ok {
				ae = e
			}
			if ae == nil || ae.Field != tc.field {
				t.Errorf("got %v, want an error for field %s", err, tc.field)
			}
		})
	}
}

func TestOIDCStoreErrorIsInternal(t *testing.T) {
	e := newEnv(t, auth.OIDCConfig{})
	broken := policyStoreFunc(func(context.Context, string, int64) ([]auth.Policy, error) { return nil, io.ErrUnexpectedEOF })
	v, err := auth.NewOIDC(auth.OIDCConfig{Issuer: e.iss.URL(), Audience: testAudience}, broken, discardLogger(), e.clock)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Authenticate(context.Background(), sign(rsa1(), e.githubClaims()))
	wantCode(t, err, cluster.EINTERNAL)
}
