package githubapp

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/wire"
)

// TestCommentReachesOnlyThisRepositorysClusters: stop, start and extend
// name clusters made for the commented repository only. A cluster of the
// same account made for another repository, or without run metadata, is
// answered exactly as an id nobody has.
func TestCommentReachesOnlyThisRepositorysClusters(t *testing.T) {
	h := newHarness(t)
	deadline := h.clock.Now().Add(time.Hour)
	h.clusters.add(wire.Cluster{ClusterID: "c-other1", Account: "acme", ClusterStatus: "running", ExpiresAt: deadline,
		Run: &wire.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: 186853002, PullRequest: commentPR}})
	h.clusters.add(wire.Cluster{ClusterID: "c-norun1", Account: "acme", ClusterStatus: "stopped", ExpiresAt: deadline})
	h.clusters.add(wire.Cluster{ClusterID: "c-mine01", Account: "acme", ClusterStatus: "running", ExpiresAt: deadline,
		Run: &wire.RunMetadata{Repository: commentRepo, RepositoryID: commentRepoID}})

	reply := func(id int64, command string) string {
		t.Helper()
		if r := h.deliver("issue_comment", commentPayloadID(t, id, command, "OWNER")); r.Err != nil {
			t.Fatal(r.Err)
		}
		cs := h.github.Comments()
		return cs[len(cs)-1].Body
	}
	seq := int64(500)
	for _, cmd := range []string{"stop %s", "start %s", "extend %s 600"} {
		seq++
		unknown := strings.ReplaceAll(reply(seq, "/smek "+strings.ReplaceAll(cmd, "%s", "c-nosuch")), "c-nosuch", "ID")
		for _, id := range []string{"c-other1", "c-norun1"} {
			seq++
			got := strings.ReplaceAll(reply(seq, "/smek "+strings.ReplaceAll(cmd, "%s", id)), id, "ID")
			if got != unknown {
				t.Errorf("/smek %s on %s: got %q, want the reply to an unknown id %q", cmd, id, got, unknown)
			}
		}
	}
	for id, want := range map[string]string{"c-other1": "running", "c-norun1": "stopped"} {
		if got := h.clusters.get(id); got.ClusterStatus != want || !got.ExpiresAt.Equal(deadline) {
			t.Errorf("%s changed: %s, expires %s; want %s, %s", id, got.ClusterStatus, got.ExpiresAt, want, deadline)
		}
	}
	// The repository's own cluster is reached.
	if got := reply(600, "/smek extend c-mine01 30"); !strings.Contains(got, "`c-mine01` is running") {
		t.Errorf("extend of this repository's cluster: got %q", got)
	}
}
