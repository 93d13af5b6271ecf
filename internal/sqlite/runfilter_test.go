package sqlite

import (
	"context"
	"slices"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// A cluster's run metadata is kept whole, the job's id included, and the
// repository owner selects clusters without regard to case and with
// LIKE's wildcards taken literally.
func TestClusterRunMetadataAndOwnerFilter(t *testing.T) {
	ctx := context.Background()
	db := openClaimDB(t)
	a := claimAccount(t, db, "acme", 10)
	f := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	readyServers(t, db, "local", f, 5)
	repos := []string{"octocat/Hello-World", "OctoCat/Spoon-Knife", "octocat-fan/x", "octo_cat/y", "octoXcat/z"}
	for i, repo := range repos {
		c := newClaim(a, i, f)
		c.Run = cluster.RunMetadata{Repository: repo, RepositoryID: int64(100 + i), RunID: 7, RunAttempt: 1, JobID: int64(51725241954 + i), Runner: "r"}
		if _, err := db.ClaimMember(ctx, c, "local"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Cluster(ctx, a.ID, "c-000001")
	if err != nil || got.Run.JobID != 51725241955 || got.Run.Repository != "OctoCat/Spoon-Knife" {
		t.Fatalf("stored run: %+v, %v", got.Run, err)
	}
	for owner, want := range map[string][]string{
		"octocat":  {"c-000000", "c-000001"},
		"OCTOCAT":  {"c-000000", "c-000001"},
		"octo_cat": {"c-000003"},
		"octo%":    nil,
	} {
		cs, err := db.Clusters(ctx, cluster.Filter{RepositoryOwner: owner})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, string(c.ID))
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("owner %q: got %v, want %v", owner, ids, want)
		}
	}
}
