package githubapp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/fake/githubfake"
)

// TestCommentAccessCachedUntilTTLOrEvent: the access is looked up once per
// AccessTTL; a removed collaborator may command until it ends, or until a
// member event for them arrives.
func TestCommentAccessCachedUntilTTLOrEvent(t *testing.T) {
	h := orgHarness(t, "none")
	h.github.SetRole(orgRepo, "mona", "write")
	seq := int64(0)
	list := func() bool {
		t.Helper()
		seq++
		before := len(h.github.Comments())
		if r := h.deliver("issue_comment", orgComment(t, seq, "Mona", "/smek list", "COLLABORATOR")); r.Err != nil {
			t.Fatal(r.Err)
		}
		return len(h.github.Comments()) > before
	}
	lookups := func() int { return h.github.Requests(githubfake.RoutePermission) }

	first, second := list(), list()
	if !first || !second || lookups() != 1 {
		t.Fatalf("two commands of a writer: %d lookups, want both run on 1", lookups())
	}
	h.clock.Advance(AccessTTL)
	if !list() || lookups() != 2 {
		t.Fatalf("after the TTL: %d lookups, want 2", lookups())
	}
	// Removed without the App hearing of it: the cached answer holds.
	h.github.SetRole(orgRepo, "mona", "")
	if !list() {
		t.Fatal("a command within the TTL did not run on the cached access")
	}
	// The member event ends it at once.
	if r := h.deliver("member", memberRemoved(t, "mona")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if list() || lookups() != 3 {
		t.Fatalf("after the member event: %d lookups, want 3 and the command ignored", lookups())
	}
}

// memberRemoved is the member fixture: user removed from orgRepo.
func memberRemoved(t *testing.T, user string) []byte {
	return variant(t, "member.added.json", func(m map[string]any) {
		m["action"] = "removed"
		m["installation"] = map[string]any{"id": testInstallation}
		r := obj(m, "repository")
		r["id"], r["full_name"], r["name"] = orgRepoID, orgRepo, "octo-repo"
		obj(m, "member")["login"] = user
	})
}

// TestAccessEventsForget: each event that can change access makes the App
// look the access up again; events of another installation or repository,
// and those that change no access, do not.
func TestAccessEventsForget(t *testing.T) {
	tests := []struct {
		name, event string
		body        func(t *testing.T) []byte
		forgets     bool
	}{
		{"member added", "member", func(t *testing.T) []byte { return toOrgRepo(t, "member.added.json", "mona") }, true},
		{"member edited", "member", func(t *testing.T) []byte { return toOrgRepo(t, "member.edited.json", "mona") }, true},
		{"member of another repository", "member", func(t *testing.T) []byte {
			return variant(t, "member.added.json", func(m map[string]any) { obj(m, "member")["login"] = "mona" })
		}, false},
		{"member of another installation", "member", func(t *testing.T) []byte {
			return variant(t, "member.added.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": otherInstallation}
				obj(m, "repository")["id"] = orgRepoID
				obj(m, "member")["login"] = "mona"
			})
		}, false},
		{"member, another user", "member", func(t *testing.T) []byte { return toOrgRepo(t, "member.added.json", "hubot") }, false},
		{"team membership removed", "membership", func(t *testing.T) []byte {
			return variant(t, "membership.removed.json", func(m map[string]any) { obj(m, "member")["login"] = "MONA" })
		}, true},
		{"organization member removed", "organization", func(t *testing.T) []byte {
			return variant(t, "organization.member_added.json", func(m map[string]any) {
				m["action"] = "member_removed"
				obj(obj(m, "membership"), "user")["login"] = "mona"
			})
		}, true},
		{"organization member invited", "organization", func(t *testing.T) []byte {
			return variant(t, "organization.member_added.json", func(m map[string]any) {
				m["action"] = "member_invited"
				obj(obj(m, "membership"), "user")["login"] = "mona"
			})
		}, false},
		{"team removed from the repository", "team", func(t *testing.T) []byte {
			return variant(t, "team.removed_from_repository.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				obj(m, "repository")["id"] = orgRepoID
			})
		}, true},
		{"team created", "team", func(t *testing.T) []byte {
			return variant(t, "team.removed_from_repository.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				m["action"] = "created"
			})
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := orgHarness(t, "none")
			h.github.SetRole(orgRepo, "mona", "write")
			if r := h.deliver("issue_comment", orgComment(t, 1, "mona", "/smek list", "COLLABORATOR")); r.Err != nil {
				t.Fatal(r.Err)
			}
			status, answer := h.send(delivery{event: tt.event, body: tt.body(t)})
			switch {
			case status == http.StatusAccepted:
				if r := h.wait(); r.Err != nil {
					t.Fatal(r.Err)
				}
			case status != http.StatusOK || !strings.Contains(string(answer), `"ignored"`):
				t.Fatalf("%s: got %d %s, want 202 or 200 ignored", tt.event, status, answer)
			}
			if r := h.deliver("issue_comment", orgComment(t, 2, "mona", "/smek list", "COLLABORATOR")); r.Err != nil {
				t.Fatal(r.Err)
			}
			want := 1
			if tt.forgets {
				want = 2
			}
			if got := h.github.Requests(githubfake.RoutePermission); got != want {
				t.Fatalf("permission lookups: got %d, want %d", got, want)
			}
		})
	}
}

// toOrgRepo is a member fixture for user on orgRepo through the test
// installation.
func toOrgRepo(t *testing.T, name, user string) []byte {
	return variant(t, name, func(m map[string]any) {
		m["installation"] = map[string]any{"id": testInstallation}
		obj(m, "repository")["id"] = orgRepoID
		obj(m, "member")["login"] = user
	})
}
