package server_test

import (
	"encoding/json"
	"testing"

	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationGitHubUninstall: uninstalling
// the App from an account (on all its repositories) ends the clusters the
// Action made in them, which carry the repository, not the installation:
// those listed in the delivery by id, the others by their owner. A
// keep-cluster one is stopped; another owner's stays.
func TestIntegrationGitHubUninstall(t *testing.T) {
	res := newResults()
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubOnDone = res.done
	}})
	acme := smek.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	helloWorld := wire.RunMetadata{Repository: "octocat/Hello-World", RepositoryID: 1296269, RunID: 9_000_001, RunAttempt: 1}
	spoonKnife := wire.RunMetadata{Repository: "octocat/Spoon-Knife", RepositoryID: 1300192, RunID: 9_000_002, RunAttempt: 1}
	other := wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 9_000_003, RunAttempt: 1}
	byID := createForRun(t, smek, acme, helloWorld)
	byOwner := createForRun(t, smek, acme, spoonKnife)
	othersCluster := createForRun(t, smek, acme, other)
	keep := true
	b, _ := json.Marshal(wire.CreateRequest{Run: &helloWorld, KeepCluster: &keep})
	kept := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", acme, string(b))

	body := webhookFixture(t, "installation.deleted.json", func(m map[string]any) {
		m["installation"].(map[string]any)["repository_selection"] = "all"
	})
	status, answer := deliver(t, smek.URL+"/github/webhook", ghSecret, "installation", "uninstall-1", body)
	accepted(t, status, answer)
	res.wait(t, "uninstall-1")

	for _, tt := range []struct {
		name string
		c    wire.Cluster
		want string
	}{
		{"a listed repository's", byID, "terminated"},
		{"another repository of the owner's", byOwner, "terminated"},
		{"a keep-cluster one", kept, "stopped"},
		{"another owner's", othersCluster, "running"},
	} {
		got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+tt.c.ClusterID, acme, "")
		if got.ClusterStatus != tt.want && !(tt.want == "terminated" && got.ClusterStatus == "terminating") {
			t.Errorf("%s (%s): %s, want %s", tt.name, tt.c.ClusterID, got.ClusterStatus, tt.want)
		}
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+kept.ClusterID+"/events", acme, "")
	if last := evs.Events[len(evs.Events)-1]; last.Cause != "webhook" || last.Message == "" {
		t.Errorf("the kept cluster's last event %+v, want the App's note saying why it was stopped", last)
	}
}
