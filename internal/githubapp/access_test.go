package githubapp

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/fake/githubfake"
)

// octo-org/octo-repo, the organization repository of the workflow_run
// fixtures, is where the access tests comment.
const (
	orgLogin  = "octo-org"
	orgRepo   = "octo-org/octo-repo"
	orgRepoID = 300029405
	orgPR     = 7
)

// orgComment is a comment by user with body on pull request orgPR of
// orgRepo, through the test installation.
func orgComment(t *testing.T, id int64, user, body, association string) []byte {
	return variant(t, "issue_comment.created.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": testInstallation}
		m["repository"] = map[string]any{"id": orgRepoID, "name": "octo-repo", "full_name": orgRepo,
			"owner": map[string]any{"login": orgLogin, "type": "Organization"}}
		obj(m, "issue")["number"] = orgPR
		c := obj(m, "comment")
		c["id"], c["body"], c["author_association"] = id, body, association
		obj(c, "user")["login"] = user
	})
}

// orgHarness is a harness whose installation also reaches orgRepo, a
// private repository of an organization whose members have base role base.
func orgHarness(t *testing.T, base string) *harness {
	h := newHarness(t)
	h.github.AddInstallation(testInstallation, orgRepo)
	h.github.AddOrganization(orgLogin, base)
	h.github.SetPrivate(orgRepo, true)
	return h
}

// TestCommentNeedsWriteAccess: only people whose role on the repository is
// admin, maintain or write (or a custom role extending write) may command,
// whatever GitHub's author association says: COLLABORATOR includes read
// and triage collaborators, MEMBER is any member of the organization.
// Those who may not get no reaction and no reply.
func TestCommentNeedsWriteAccess(t *testing.T) {
	const user = "mona"
	tests := []struct {
		name, association string
		base              string // the organization's base role
		public            bool
		setup             func(g *githubfake.Server)
		runs              bool
	}{
		{"read collaborator", "COLLABORATOR", "none", false, role("read"), false},
		{"triage collaborator", "COLLABORATOR", "none", false, role("triage"), false},
		{"write collaborator", "COLLABORATOR", "none", false, role("write"), true},
		{"maintainer", "COLLABORATOR", "none", false, role("maintain"), true},
		{"admin", "COLLABORATOR", "none", false, role("admin"), true},
		{"organization owner", "MEMBER", "none", false, member(true), true},
		{"organization member without repository access", "MEMBER", "none", false, member(false), false},
		{"organization member, public repository", "MEMBER", "none", true, member(false), false},
		{"organization member, base role read", "MEMBER", "read", false, member(false), false},
		{"organization member, base role write", "MEMBER", "write", false, member(false), true},
		{"outside collaborator with read", "COLLABORATOR", "read", false, role("read"), false},
		{"outside collaborator with write", "COLLABORATOR", "read", false, role("write"), true},
		{"member with a read grant and base role write", "MEMBER", "write", false, func(g *githubfake.Server) {
			member(false)(g)
			role("read")(g)
		}, true},
		{"custom role extending write", "COLLABORATOR", "none", false, custom("deployer", "write"), true},
		{"custom role extending triage", "COLLABORATOR", "none", false, custom("labeler", "triage"), false},
		{"stranger, public repository", "NONE", "none", true, func(*githubfake.Server) {}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := orgHarness(t, tt.base)
			h.github.SetPrivate(orgRepo, !tt.public)
			tt.setup(h.github)
			if r := h.deliver("issue_comment", orgComment(t, 1, user, "/smek create privileged keep", tt.association)); r.Err != nil {
				t.Fatal(r.Err)
			}
			if got := h.clusters.count("Create") == 1; got != tt.runs {
				t.Fatalf("command ran: got %t, want %t", got, tt.runs)
			}
			if cs, rs := h.github.Comments(), h.github.Reactions(); !tt.runs && len(cs)+len(rs) != 0 {
				t.Fatalf("got comments %v reactions %v, want neither", cs, rs)
			}
		})
	}
}

func role(r string) func(*githubfake.Server) {
	return func(g *githubfake.Server) { g.SetRole(orgRepo, "mona", r) }
}

func member(owner bool) func(*githubfake.Server) {
	return func(g *githubfake.Server) { g.AddMember(orgLogin, "mona", owner) }
}

func custom(name, base string) func(*githubfake.Server) {
	return func(g *githubfake.Server) {
		g.AddCustomRole(orgLogin, name, base)
		g.SetRole(orgRepo, "mona", name)
	}
}

// TestAccessMayCommand pins the rule on GitHub's answers: the base roles
// by name, custom roles (and answers without a role name) by permission.
func TestAccessMayCommand(t *testing.T) {
	for _, tt := range []struct {
		a    Access
		want bool
	}{
		{Access{"admin", "admin"}, true},
		{Access{"write", "maintain"}, true},
		{Access{"write", "write"}, true},
		{Access{"read", "triage"}, false},
		{Access{"read", "read"}, false},
		{NoAccess, false},
		{Access{"write", "deployer"}, true},
		{Access{"read", "labeler"}, false},
		{Access{"write", ""}, true},
		{Access{"read", ""}, false},
		{Access{"", ""}, false},
		{Access{"write", "read"}, false}, // a base role decides by its name
	} {
		if got := tt.a.MayCommand(); got != tt.want {
			t.Errorf("%+v: got %t, want %t", tt.a, got, tt.want)
		}
	}
}

// TestCommentRefusedWhenAccessUnknown: a lookup GitHub refuses, or one
// that fails maxAccessLookups times, refuses the command with a reply; it
// never runs it.
func TestCommentRefusedWhenAccessUnknown(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		h := orgHarness(t, "none")
		h.github.SetRole(orgRepo, "mona", "write")
		// An installation without the metadata permission is refused the
		// lookup (403), but may still comment.
		h.github.SetGrants(testInstallation, map[string]string{"pull_requests": "write"})
		r := h.deliver("issue_comment", orgComment(t, 1, "mona", "/smek create", "OWNER"))
		assertRefused(t, h, r, 1)
	})
	t.Run("failing", func(t *testing.T) {
		h := orgHarness(t, "none")
		h.github.SetRole(orgRepo, "mona", "write")
		h.github.Fail(githubfake.RoutePermission, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusInternalServerError)
		h.send(delivery{event: "issue_comment", body: orgComment(t, 1, "mona", "/smek create", "OWNER")})
		h.advanceToRetry(1)
		h.advanceToRetry(2)
		assertRefused(t, h, h.wait(), maxAccessLookups)
	})
}

func assertRefused(t *testing.T, h *harness, r Result, attempts int) {
	t.Helper()
	if r.Err != nil || r.Attempts != attempts {
		t.Fatalf("got %d attempts, err %v; want the refusal on attempt %d", r.Attempts, r.Err, attempts)
	}
	if n := h.clusters.count("Create"); n != 0 {
		t.Fatalf("Create calls: got %d, want 0", n)
	}
	cs := h.github.Comments()
	if len(cs) != 1 || cs[0].Repo != orgRepo || !strings.Contains(cs[0].Body, "@mona the command did not run") {
		t.Fatalf("comments: got %+v, want one refusal on %s", cs, orgRepo)
	}
	var got []string
	for _, r := range h.github.Reactions() {
		got = append(got, r.Content)
	}
	if !slices.Equal(got, []string{ReactionReceived, ReactionFailed}) {
		t.Fatalf("reactions: got %v, want [%s %s]", got, ReactionReceived, ReactionFailed)
	}
}

// TestWhoMayCommandIsDocumented: the help reply and docs/github-app.md
// name the same roles and the same reach.
func TestWhoMayCommandIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "github-app.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"admin, maintain or write", "extends write", "clusters made for this repository"} {
		if !strings.Contains(helpText, want) || !strings.Contains(string(doc), want) {
			t.Errorf("the help reply and docs/github-app.md do not both say %q", want)
		}
	}
}

// TestAccessCache: entries live AccessTTL; a lookup that was under way
// when something was forgotten is not stored; forget matches by
// installation, repository and user; the cache stays bounded.
func TestAccessCache(t *testing.T) {
	clock := clockwork.NewFakeClock()
	c := newAccessCache(clock)
	write := Access{Permission: "write", Role: "write"}
	mona := newAccessKey(1, 10, "Mona")

	_, ok, gen := c.get(mona)
	if ok {
		t.Fatal("hit in an empty cache")
	}
	c.put(mona, write, gen)
	if got, ok, _ := c.get(newAccessKey(1, 10, "mona")); !ok || got != write {
		t.Fatalf("got %+v %t, want the stored access under any case of the login", got, ok)
	}
	clock.Advance(AccessTTL - time.Nanosecond)
	if _, ok, _ := c.get(mona); !ok {
		t.Fatal("expired before AccessTTL")
	}
	clock.Advance(time.Nanosecond)
	if _, ok, _ := c.get(mona); ok {
		t.Fatal("alive after AccessTTL")
	}

	// A lookup races a forget: its answer may be older than the change.
	_, _, gen = c.get(mona)
	c.forget(1, 10, "mona")
	c.put(mona, write, gen)
	if _, ok, _ := c.get(mona); ok {
		t.Fatal("an answer from before a forget was stored")
	}

	keys := []accessKey{newAccessKey(1, 10, "mona"), newAccessKey(1, 11, "mona"), newAccessKey(1, 10, "hubot"), newAccessKey(2, 10, "mona")}
	for _, tt := range []struct {
		installation, repo int64
		user               string
		left               []bool
	}{
		{1, 10, "MONA", []bool{false, true, true, true}},
		{1, 0, "mona", []bool{false, false, true, true}},
		{1, 10, "", []bool{false, true, false, true}},
		{1, 0, "", []bool{false, false, false, true}},
	} {
		for _, k := range keys {
			_, _, gen := c.get(k)
			c.put(k, write, gen)
		}
		c.forget(tt.installation, tt.repo, tt.user)
		for i, k := range keys {
			if _, ok, _ := c.get(k); ok != tt.left[i] {
				t.Errorf("forget(%d, %d, %q): %+v left %t, want %t", tt.installation, tt.repo, tt.user, k, ok, tt.left[i])
			}
		}
	}

	for i := range 3 * maxCachedAccess {
		_, _, gen := c.get(mona)
		c.put(newAccessKey(1, int64(i), "mona"), write, gen)
	}
	if n := len(c.entries); n > maxCachedAccess {
		t.Fatalf("%d entries, want at most %d", n, maxCachedAccess)
	}
}
