package sqlite

import (
	"context"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// TestSetMemberStateRefusesForbiddenTransitions checks that the store
// refuses a move that is not in the member's table, names both states,
// and changes nothing.
func TestSetMemberStateRefusesForbiddenTransitions(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	m, err := db.CreateMember(ctx, "local", claimFlavor)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		to cluster.MemberState
		ok bool
	}{
		{cluster.MemberClaimed, false}, // only a claim takes a ready member
		{cluster.MemberDirty, false},
		{cluster.MemberReady, true},
		{cluster.MemberStopped, false},
		{cluster.MemberRebuilding, false},
		{cluster.MemberFailed, true},
		{cluster.MemberReady, false}, // a failed member is destroyed, never reused
		{cluster.MemberDeleted, true},
		{cluster.MemberFailed, false}, // deleted is the end
	} {
		before, err := db.Member(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		err = db.SetMemberState(ctx, m.ID, step.to, nil, "")
		if step.ok {
			if err != nil {
				t.Fatalf("%s → %s: %v", before.State, step.to, err)
			}
			continue
		}
		if cluster.ErrorCode(err) != cluster.ECONFLICT {
			t.Fatalf("%s → %s: got %v, want a conflict", before.State, step.to, err)
		}
		after, _ := db.Member(ctx, m.ID)
		if after.State != before.State {
			t.Errorf("a refused %s → %s left the member %s", before.State, step.to, after.State)
		}
	}
}

// TestUpdateClusterRefusesForbiddenMemberTransition checks that a cluster
// change whose member step is not in the table changes neither the member
// nor the cluster.
func TestUpdateClusterRefusesForbiddenMemberTransition(t *testing.T) {
	db, c, m := claimedMember(t)
	ctx := context.Background()
	_, err := db.UpdateCluster(ctx, c.ID, cluster.Change{From: []cluster.Status{cluster.Pending}, To: cluster.Running, MemberState: cluster.MemberReady})
	if cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("claimed → ready with the cluster: got %v, want a conflict", err)
	}
	if got, _ := db.Cluster(ctx, 0, c.ID); got.Status != cluster.Pending {
		t.Errorf("cluster is %s after a refused change, want %s", got.Status, cluster.Pending)
	}
	if got, _ := db.Member(ctx, m.ID); got.State != cluster.MemberClaimed {
		t.Errorf("member is %s after a refused change, want %s", got.State, cluster.MemberClaimed)
	}
}

// TestUpdateClusterLeavesAMemberThatMovedOn checks that ending a failed
// cluster does not touch its former member, which the pool destroyed or
// gave to another cluster meanwhile.
func TestUpdateClusterLeavesAMemberThatMovedOn(t *testing.T) {
	db, c, m := claimedMember(t)
	ctx := context.Background()
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberFailed, nil, "ghost"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Cluster(ctx, 0, c.ID); got.Status != cluster.Failed {
		t.Fatalf("cluster is %s after its member failed, want %s", got.Status, cluster.Failed)
	}
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberDeleted, nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateCluster(ctx, c.ID, cluster.Change{From: []cluster.Status{cluster.Failed}, To: cluster.Terminated,
		ReleaseMember: true, MemberState: cluster.MemberDirty}); err != nil {
		t.Fatalf("terminate the failed cluster: %v", err)
	}
	if got, _ := db.Member(ctx, m.ID); got.State != cluster.MemberDeleted {
		t.Errorf("member is %s, want it left %s", got.State, cluster.MemberDeleted)
	}
}

// claimedMember returns a database with one member claimed by cluster c.
func claimedMember(t *testing.T) (*DB, cluster.Cluster, cluster.Member) {
	t.Helper()
	db := openClaimDB(t)
	a := claimAccount(t, db, "ci", 10)
	readyServers(t, db, "local", claimFlavor, 1)
	c := newClaim(a, 1, claimFlavor)
	m, err := db.ClaimMember(context.Background(), c, "local")
	if err != nil {
		t.Fatal(err)
	}
	return db, c, m
}
