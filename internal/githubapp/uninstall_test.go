package githubapp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

// installation.deleted.json: installation 2 of octocat, on the selected
// repository octocat/Hello-World (1296269).
var fixtureUninstalled = wire.RunMetadata{Repository: "octocat/Hello-World", RepositoryID: 1296269, RunID: 77, RunAttempt: 1}

func uninstalled(edit func(r *wire.RunMetadata)) wire.RunMetadata {
	r := fixtureUninstalled
	edit(&r)
	return r
}

// Uninstalling the App ends the clusters of the repositories it served:
// those made from comments through the installation and those the Action
// made there (which carry the repository, not the installation). A
// keep-cluster cluster is stopped, as its own expiry would: its owner can
// start it again for a while.
func TestUninstallEndsTheRepositoriesClusters(t *testing.T) {
	deleted := func(t *testing.T) []byte { return fixture(t, "installation.deleted.json") }
	allRepos := func(t *testing.T) []byte {
		return variant(t, "installation.deleted.json", func(m map[string]any) {
			obj(m, "installation")["repository_selection"] = "all"
			delete(m, "repositories")
		})
	}
	removed := func(t *testing.T) []byte {
		return variant(t, "installation.deleted.json", func(m map[string]any) {
			m["action"] = "removed"
			m["repository_selection"] = "selected"
			m["repositories_added"] = []any{}
			m["repositories_removed"] = m["repositories"]
			delete(m, "repositories")
		})
	}
	type want struct {
		run    wire.RunMetadata
		keep   bool
		status string
	}
	tests := []struct {
		name, event string
		body        func(t *testing.T) []byte
		clusters    map[string]want
	}{{
		name: "installation deleted", event: "installation", body: deleted,
		clusters: map[string]want{
			"c-cmnt01": {run: wire.RunMetadata{RepositoryID: 1296269, PullRequest: 2, InstallationID: 2}, status: "terminated"},
			"c-cmnt02": {run: wire.RunMetadata{RepositoryID: 555, PullRequest: 2, InstallationID: 2}, status: "terminated"},
			"c-actn01": {run: fixtureUninstalled, status: "terminated"},
			"c-kept01": {run: fixtureUninstalled, keep: true, status: "stopped"},
			"c-other1": {run: uninstalled(func(r *wire.RunMetadata) { r.Repository, r.RepositoryID = "octocat/Spoon-Knife", 1300192 }), status: "running"},
			"c-other2": {run: wire.RunMetadata{RepositoryID: 186853002, PullRequest: 2, InstallationID: 1}, status: "running"},
		},
	}, {
		name: "installation on all repositories deleted", event: "installation", body: allRepos,
		clusters: map[string]want{
			"c-actn01": {run: fixtureUninstalled, status: "terminated"},
			"c-actn02": {run: uninstalled(func(r *wire.RunMetadata) { r.Repository, r.RepositoryID = "OctoCat/Spoon-Knife", 1300192 }), status: "terminated"},
			"c-other1": {run: uninstalled(func(r *wire.RunMetadata) { r.Repository, r.RepositoryID = "octocat-fan/Hello-World", 42 }), status: "running"},
		},
	}, {
		name: "installation_repositories removed", event: "installation_repositories", body: removed,
		clusters: map[string]want{
			"c-cmnt01": {run: wire.RunMetadata{RepositoryID: 1296269, PullRequest: 2, InstallationID: 2}, status: "terminated"},
			"c-actn01": {run: fixtureUninstalled, status: "terminated"},
			"c-kept01": {run: fixtureUninstalled, keep: true, status: "stopped"},
			// The installation keeps its other repositories.
			"c-cmnt02": {run: wire.RunMetadata{RepositoryID: 555, PullRequest: 2, InstallationID: 2}, status: "running"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for id, w := range tt.clusters {
				run := w.run
				h.clusters.add(wire.Cluster{ClusterID: id, Account: "acme", KeepCluster: w.keep, Run: &run})
			}
			if r := h.deliver(tt.event, tt.body(t)); r.Err != nil {
				t.Fatalf("work failed: %v", r.Err)
			}
			for id, w := range tt.clusters {
				if got := h.clusters.get(id).ClusterStatus; got != w.status {
					t.Errorf("cluster %s (%+v, keep %t): got %s, want %s", id, w.run, w.keep, got, w.status)
				}
				if w.keep {
					h.clusters.mu.Lock()
					notes := h.clusters.notes[id]
					h.clusters.mu.Unlock()
					if len(notes) != 1 || !strings.Contains(notes[0], "stopped") {
						t.Errorf("cluster %s (keep-cluster) has notes %q, want one saying why it was stopped", id, notes)
					}
				}
			}
		})
	}
}

// A kept cluster that its account cannot keep stopped (its
// max-stopped-clusters) is terminated; one still being created is stopped
// on a later try.
func TestUninstallStopsKeptClustersOrEndsThem(t *testing.T) {
	h := newHarness(t)
	h.clusters.add(wire.Cluster{ClusterID: "c-kept01", Account: "acme", KeepCluster: true, Run: &fixtureUninstalled})
	h.clusters.add(wire.Cluster{ClusterID: "c-kept02", Account: "acme", KeepCluster: true, Run: &fixtureUninstalled, ClusterStatus: "pending"})
	h.clusters.failNext("Stop", cluster.Errorf(cluster.ELIMIT, "", "account acme keeps 5 stopped clusters, its limit"))
	if status, _ := h.send(delivery{event: "installation", body: fixture(t, "installation.deleted.json")}); status != http.StatusAccepted {
		t.Fatal("not accepted")
	}
	retry := h.nextRetry() // c-kept02 is still being created
	if got := h.clusters.get("c-kept01").ClusterStatus; got != "terminated" {
		t.Fatalf("kept cluster over the stopped limit: got %s, want terminated", got)
	}
	h.clusters.mu.Lock()
	h.clusters.clusters["c-kept02"].ClusterStatus = "running"
	h.clusters.mu.Unlock()
	h.clock.Advance(retry.Sub(h.clock.Now()))
	if r := h.wait(); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := h.clusters.get("c-kept02").ClusterStatus; got != "stopped" {
		t.Fatalf("kept cluster once created: got %s, want stopped", got)
	}
}
