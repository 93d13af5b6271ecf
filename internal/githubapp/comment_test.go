package githubapp

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/wire"
)

// issue_comment.created.json: chhsia0 comments on chhsia0/knative-route-demo#3.
const (
	commentRepo   = "chhsia0/knative-route-demo"
	commentRepoID = 199540710
	commentPR     = 3
	commentID     = 546616131
	commenter     = "chhsia0"
)

// commentPayload is the fixture with the App's installation, a body and an
// author association.
func commentPayload(t *testing.T, body, association string) []byte {
	return commentPayloadID(t, commentID, body, association)
}

// commentPayloadID is commentPayload for another comment id.
func commentPayloadID(t *testing.T, id int64, body, association string) []byte {
	return variant(t, "issue_comment.created.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": testInstallation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
		c := obj(m, "comment")
		c["id"] = id
		c["body"] = body
		c["author_association"] = association
	})
}

func reactions(h *harness) []string {
	var out []string
	for _, r := range h.github.Reactions() {
		if r.CommentID != commentID || r.Repo != commentRepo || r.Installation != testInstallation {
			h.t.Fatalf("reaction on the wrong comment: %+v", r)
		}
		out = append(out, r.Content)
	}
	return out
}

// onlyComment returns the single comment the App wrote.
func onlyComment(t *testing.T, h *harness) githubfake.Comment {
	t.Helper()
	cs := h.github.Comments()
	if len(cs) != 1 {
		t.Fatalf("comments: got %d %+v, want 1", len(cs), cs)
	}
	c := cs[0]
	if c.Repo != commentRepo || c.Number != commentPR || c.Installation != testInstallation {
		t.Fatalf("comment went to %s#%d (installation %d), want %s#%d", c.Repo, c.Number, c.Installation, commentRepo, commentPR)
	}
	assertNoSecrets(t, c.Body)
	return c
}

// secretLike matches what must never be in a public comment: kubeconfig
// documents, bearer tokens of the tenant, SMEK and GitHub tokens.
var secretLike = regexp.MustCompile(`apiVersion:|kind: Config|secret-tenant-token|client-key-data|smek_[a-z2-7]{8}|ghs_[0-9a-f]{8}`)

func assertNoSecrets(t *testing.T, body string) {
	t.Helper()
	if m := secretLike.FindString(body); m != "" {
		t.Fatalf("comment shows %q:\n%s", m, body)
	}
}

func TestCommentCreateByOwner(t *testing.T) {
	h := newHarness(t)
	r := h.deliver("issue_comment", commentPayload(t, "Looks good, let's try it.\r\n/smek create 30 privileged version=1.27.4", "OWNER"))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := reactions(h); !slices.Equal(got, []string{"eyes", "rocket"}) {
		t.Fatalf("reactions: got %v, want [eyes rocket]", got)
	}
	c := onlyComment(t, h)
	for _, want := range []string{"@chhsia0", "`c-mem001`", "Kubernetes 1.27.4", "privileged", "expires 2026-03-01 12:30 UTC",
		"terminated when this pull request closes", "https://smek.example.com/v1/clusters/c-mem001/kubeconfig", "`acme`"} {
		if !strings.Contains(c.Body, want) {
			t.Errorf("reply lacks %q:\n%s", want, c.Body)
		}
	}
	cl := h.clusters.get("c-mem001")
	want := wire.RunMetadata{Repository: commentRepo, RepositoryID: commentRepoID, PullRequest: commentPR,
		InstallationID: testInstallation, Actor: commenter, Event: "issue_comment"}
	if cl.Account != "acme" || *cl.Run != want || cl.KeepCluster || !cl.EnablePrivileged || cl.MinutesToLive != 30 {
		t.Fatalf("cluster: got %+v run %+v, want acme's, unkept, privileged, 30 min, run %+v", cl, *cl.Run, want)
	}
	if n := h.github.TokensIssued(testInstallation); n != 1 {
		t.Fatalf("installation tokens issued: got %d, want 1 (cached across calls)", n)
	}

	// The PR closes: its cluster ends.
	if r := h.deliver("pull_request", variant(t, "pull_request.closed.json", func(m map[string]any) {
		obj(m, "repository")["id"] = commentRepoID
		m["number"] = commentPR
	})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.clusters.get("c-mem001").ClusterStatus; got != "terminated" {
		t.Fatalf("cluster after the PR closed: got %s, want terminated", got)
	}
}

func TestCommentCommands(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(wire.Cluster{ClusterID: "c-kept01", Account: "acme", ClusterStatus: "running", KeepCluster: true, K8sVersion: "1.36.3",
		ExpiresAt: h.clock.Now().Add(time.Hour), Run: &wire.RunMetadata{RepositoryID: commentRepoID, PullRequest: commentPR}})
	tests := []struct {
		command  string
		ok       bool
		contains []string
	}{
		{"/smek list", true, []string{"| `c-kept01` | running | 1.36.3 | 2026-03-01 13:00 UTC | yes |"}},
		{"/smek stop c-kept01", true, []string{"`c-kept01` is stopped"}},
		{"/smek start c-kept01", true, []string{"`c-kept01` is running", "/v1/clusters/c-kept01/kubeconfig"}},
		{"/smek extend c-kept01 45", true, []string{"expires 2026-03-01 13:45 UTC"}},
		{"/smek start c-kept01", false, []string{"could not start c-kept01", "is running"}},
		{"/smek help", true, []string{"`/smek create [minutes] [privileged] [keep] [version=X]`"}},
		{"/smek", true, []string{"`/smek list`"}},
		{"/smek deploy", false, []string{`unknown command "deploy"`, "`/smek list`"}},
		{"/smek extend c-kept01", false, []string{"takes a cluster id and minutes"}},
		{"/smek stop my-cluster", false, []string{"is not a SMEK cluster id"}},
	}
	// One harness for the sequence: each step sees the state the one
	// before left, so no subtests.
	for i, tt := range tests {
		// A distinct comment per command, as on GitHub.
		if r := h.deliver("issue_comment", commentPayloadID(t, int64(100+i), tt.command, "COLLABORATOR")); r.Err != nil {
			t.Fatalf("%s: %v", tt.command, r.Err)
		}
		cs := h.github.Comments()
		if len(cs) != i+1 {
			t.Fatalf("%s: got %d comments, want %d", tt.command, len(cs), i+1)
		}
		c := cs[i]
		assertNoSecrets(t, c.Body)
		for _, want := range tt.contains {
			if !strings.Contains(c.Body, want) {
				t.Errorf("%s: reply lacks %q:\n%s", tt.command, want, c.Body)
			}
		}
		rs := h.github.Reactions()
		last := rs[len(rs)-1]
		if want := map[bool]string{true: "rocket", false: "confused"}[tt.ok]; last.Content != want || last.CommentID != int64(100+i) {
			t.Errorf("%s: final reaction: got %+v, want %s on comment %d", tt.command, last, want, 100+i)
		}
	}
}

// TestCommentFromOutsiderIsIgnored: anyone may comment on a public
// repository and reads it; whatever the association, the command gets no
// reaction and no reply. The access looked up once is cached.
func TestCommentFromOutsiderIsIgnored(t *testing.T) {
	h := newHarness(t)
	for i, assoc := range []string{"NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN"} {
		body := variant(t, "issue_comment.created.json", func(m map[string]any) {
			m["installation"] = map[string]any{"id": testInstallation}
			c := obj(m, "comment")
			c["id"], c["body"], c["author_association"] = 900+i, "/smek create", assoc
			obj(c, "user")["login"] = "Outsider"
		})
		if r := h.deliver("issue_comment", body); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := h.clusters.count("Create"); n != 0 {
		t.Fatalf("Create calls: got %d, want 0", n)
	}
	if cs, rs := h.github.Comments(), h.github.Reactions(); len(cs)+len(rs) != 0 {
		t.Fatalf("outsiders got an answer: comments %v reactions %v", cs, rs)
	}
	if n := h.github.Requests(githubfake.RoutePermission); n != 1 {
		t.Fatalf("permission lookups: got %d, want 1 (then cached)", n)
	}
}

func TestCommentIgnored(t *testing.T) {
	tests := []struct {
		name string
		body func(t *testing.T) []byte
	}{
		{"on a plain issue", func(t *testing.T) []byte {
			return variant(t, "issue_comment.created.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				delete(obj(m, "issue"), "pull_request")
				obj(m, "comment")["body"] = "/smek create"
			})
		}},
		{"edited", func(t *testing.T) []byte {
			return variant(t, "issue_comment.created.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				m["action"] = "edited"
				m["changes"] = map[string]any{"body": map[string]any{"from": "/smek list"}}
				obj(m, "comment")["body"] = "/smek create"
			})
		}},
		{"not a command (the fixture's /build)", func(t *testing.T) []byte { return fixture(t, "issue_comment.created.json") }},
		{"quoted command", func(t *testing.T) []byte { return commentPayload(t, "> /smek create\nwhy?", "OWNER") }},
		{"no installation", func(t *testing.T) []byte {
			return variant(t, "issue_comment.created.json", func(m map[string]any) { obj(m, "comment")["body"] = "/smek create" })
		}},
		{"by a bot", func(t *testing.T) []byte {
			return variant(t, "issue_comment.created.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				c := obj(m, "comment")
				c["body"] = "/smek create"
				obj(c, "user")["type"] = "Bot"
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			status, answer := h.send(delivery{event: "issue_comment", body: tt.body(t)})
			if status != http.StatusOK || !strings.Contains(string(answer), `"ignored"`) {
				t.Fatalf("got %d %s, want 200 ignored", status, answer)
			}
			if n := h.clusters.count("Create"); n != 0 {
				t.Fatalf("Create calls: got %d, want 0", n)
			}
		})
	}
}

func TestCommentNamingAnotherAccountsCluster(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(wire.Cluster{ClusterID: "c-umb001", Account: "umbrella", ClusterStatus: "running"})
	for _, cmd := range []string{"/smek stop c-umb001", "/smek extend c-umb001 600"} {
		body := commentPayload(t, cmd, "OWNER")
		if r := h.deliver("issue_comment", body); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, c := range h.github.Comments() {
		assertNoSecrets(t, c.Body)
		if !strings.Contains(c.Body, "no cluster c-umb001 made for this repository") {
			t.Errorf("reply: got %q, want a not-found answer", c.Body)
		}
	}
	if got := reactions(h); !slices.Equal(got, []string{"eyes", "confused"}) {
		t.Errorf("reactions: got %v, want [eyes confused]", got)
	}
	if got := h.clusters.get("c-umb001"); got.ClusterStatus != "running" || !got.ExpiresAt.IsZero() {
		t.Fatalf("umbrella's cluster changed: %+v", got)
	}
}

func TestCommentOverTheAccountLimit(t *testing.T) {
	h := newHarness(t)
	h.clusters.limit = 0
	h.deliver("issue_comment", commentPayload(t, "/smek create", "MEMBER"))
	c := onlyComment(t, h)
	if !strings.Contains(c.Body, "could not create a cluster") || !strings.Contains(c.Body, "limit") {
		t.Fatalf("reply: got %q, want the limit named", c.Body)
	}
}

func TestCommentReplyRetriedWithoutRunningTwice(t *testing.T) {
	h := newHarness(t)
	// The eyes reaction fails once, the reply twice (a 502 and a secondary
	// rate limit), the final reaction once.
	h.github.Fail(githubfake.RouteReaction, http.StatusInternalServerError)
	h.github.Fail(githubfake.RouteComment, http.StatusBadGateway, http.StatusServiceUnavailable)

	status, _ := h.send(delivery{event: "issue_comment", body: commentPayload(t, "/smek create", "OWNER")})
	if status != http.StatusAccepted {
		t.Fatalf("got %d, want 202", status)
	}
	h.advanceToRetry(1) // eyes failed
	h.advanceToRetry(2) // the reply failed
	h.github.Fail(githubfake.RouteReaction, http.StatusBadGateway)
	h.advanceToRetry(3) // the reply failed again
	h.advanceToRetry(4) // rocket failed
	r := h.wait()
	if r.Err != nil || r.Attempts != 5 {
		t.Fatalf("got %d attempts, err %v; want success on the 5th", r.Attempts, r.Err)
	}
	if n := h.clusters.count("Create"); n != 1 {
		t.Fatalf("Create calls: got %d, want 1", n)
	}
	c := onlyComment(t, h)
	if !strings.Contains(c.Body, "`c-mem001`") {
		t.Fatalf("reply: got %q, want the cluster id", c.Body)
	}
	if got := reactions(h); !slices.Equal(got, []string{"eyes", "rocket"}) {
		t.Fatalf("reactions: got %v, want [eyes rocket]", got)
	}
}

func TestCommentPermanentGitHubErrorIsNotRetried(t *testing.T) {
	h := newHarness(t)
	h.github.Fail(githubfake.RouteComment, http.StatusNotFound) // the PR was deleted
	r := h.deliver("issue_comment", commentPayload(t, "/smek list", "OWNER"))
	if r.Err != nil || r.Attempts != 1 {
		t.Fatalf("got %d attempts, err %v; want one successful attempt", r.Attempts, r.Err)
	}
	if got := reactions(h); !slices.Equal(got, []string{"eyes", "rocket"}) {
		t.Fatalf("reactions: got %v, want [eyes rocket]", got)
	}
}

func TestCommentPermissionLookupRetried(t *testing.T) {
	h := newHarness(t)
	h.github.Fail(githubfake.RoutePermission, http.StatusInternalServerError)
	h.send(delivery{event: "issue_comment", body: commentPayload(t, "/smek list", "NONE")})
	h.advanceToRetry(1)
	if r := h.wait(); r.Err != nil || r.Attempts != 2 {
		t.Fatalf("got %d attempts, err %v; want success on the 2nd", r.Attempts, r.Err)
	}
	onlyComment(t, h)
}

func TestInstallationTokenRefreshed(t *testing.T) {
	h := newHarness(t)
	// ghinstallation refreshes a token a minute before it expires, so a
	// 30-second token is renewed at each call.
	h.github.SetTokenTTL(30 * time.Second)
	h.deliver("issue_comment", commentPayload(t, "/smek list", "OWNER"))
	if n := h.github.TokensIssued(testInstallation); n != 4 {
		t.Fatalf("tokens issued: got %d, want 4 (permission, eyes, reply, rocket)", n)
	}
}

func TestAppJWTChecked(t *testing.T) {
	// GitHub knows the key under another app id: the JWT's issuer does not
	// match, the token exchange is refused and no comment is made.
	fake := githubfake.New(testAppID+1, &appKey().PublicKey)
	defer fake.Close()
	fake.AddInstallation(testInstallation, commentRepo)
	gh, err := NewAppClient(testAppID, appKeyPEM(), fake.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = gh.Comment(t.Context(), testInstallation, "chhsia0", "knative-route-demo", commentPR, "hello")
	if err == nil || !strings.Contains(err.Error(), "401") || !isPermanent(err) {
		t.Fatalf("got %v, want a permanent 401 for a JWT of another app", err)
	}
	if len(fake.Comments()) != 0 {
		t.Fatal("a comment was made without a valid installation token")
	}
}

// TestCommentExtendReply: the reply to an extend says until when the
// cluster runs and that the kubeconfigs already handed out (a CI job's
// file the App cannot reach) keep working until then; for a cluster older
// than a kubeconfig's lifetime it says which ones do and how to fetch a
// fresh one, with one's own token.
func TestCommentExtendReply(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	run := &wire.RunMetadata{RepositoryID: commentRepoID, PullRequest: commentPR}
	h.clusters.add(wire.Cluster{ClusterID: "c-new001", Account: "acme", K8sVersion: "1.36.3", CreatedAt: now.Add(-10 * time.Minute), ExpiresAt: now.Add(5 * time.Minute), Run: run})
	h.clusters.add(wire.Cluster{ClusterID: "c-old001", Account: "acme", K8sVersion: "1.36.3", CreatedAt: now.Add(-8 * 24 * time.Hour), ExpiresAt: now.Add(time.Hour), Run: run})
	h.clusters.add(wire.Cluster{ClusterID: "c-stp001", Account: "acme", K8sVersion: "1.36.3", ClusterStatus: "stopped", CreatedAt: now, ExpiresAt: now, Run: run})
	tests := []struct {
		command       string
		want, wantNot []string
	}{
		{"/smek extend c-new001 60", []string{"`c-new001` is running, expires 2026-03-01 13:05 UTC.", "Kubeconfigs already handed out for it keep working until then."}, []string{"curl"}},
		{"/smek extend c-old001 60", []string{"expires 2026-03-01 14:00 UTC.", "Kubeconfigs fetched since 2026-02-22 14:00 UTC keep working until then", "/v1/clusters/c-old001/kubeconfig"}, nil},
		{"/smek extend c-stp001 60", []string{"`c-stp001` is stopped, expires 2026-03-01 13:00 UTC."}, []string{"keep working"}},
	}
	for i, tt := range tests {
		if r := h.deliver("issue_comment", commentPayloadID(t, int64(200+i), tt.command, "MEMBER")); r.Err != nil {
			t.Fatalf("%s: %v", tt.command, r.Err)
		}
		cs := h.github.Comments()
		body := cs[len(cs)-1].Body
		assertNoSecrets(t, body)
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: reply lacks %q:\n%s", tt.command, s, body)
			}
		}
		for _, s := range tt.wantNot {
			if strings.Contains(body, s) {
				t.Errorf("%s: reply has %q:\n%s", tt.command, s, body)
			}
		}
	}
}

// The App's idea of a kubeconfig's lifetime is the one kube mints.
func TestKubeconfigLifetimeMatchesKube(t *testing.T) {
	if kubeconfigLifetime != kube.TenantTokenLifetime {
		t.Errorf("the App says kubeconfigs live %s; kube mints them for %s", kubeconfigLifetime, kube.TenantTokenLifetime)
	}
}
