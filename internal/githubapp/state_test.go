package githubapp

import (
	"strings"
	"testing"
)

// TestCommentCreateOnClosedPullRequestIsRefused: a closed or merged pull
// request gets no new cluster, and the commenter is told why.
func TestCommentCreateOnClosedPullRequestIsRefused(t *testing.T) {
	tests := []struct {
		name     string
		mergedAt any
		want     string
	}{
		{"closed", nil, "this pull request is closed"},
		{"merged", "2019-10-26T16:09:23Z", "this pull request is merged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			body := variant(t, "issue_comment.created.json", func(m map[string]any) {
				m["installation"] = map[string]any{"id": testInstallation}
				issue := obj(m, "issue")
				issue["state"] = "closed"
				issue["closed_at"] = "2019-10-26T16:09:23Z"
				obj(issue, "pull_request")["merged_at"] = tt.mergedAt
				obj(m, "comment")["body"] = "/smek create"
			})
			if r := h.deliver("issue_comment", body); r.Err != nil {
				t.Fatal(r.Err)
			}
			if n := h.clusters.count("Create"); n != 0 {
				t.Fatalf("Create calls: got %d, want 0", n)
			}
			c := onlyComment(t, h)
			if !strings.Contains(c.Body, tt.want) || !strings.Contains(c.Body, "@"+commenter) {
				t.Errorf("reply: got %q, want it to say %q", c.Body, tt.want)
			}
			if got := reactions(h); len(got) == 0 || got[len(got)-1] != ReactionFailed {
				t.Errorf("reactions: got %v, want the last to be %s", got, ReactionFailed)
			}
		})
	}
}
