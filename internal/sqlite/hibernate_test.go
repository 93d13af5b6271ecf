package sqlite

import (
	"context"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// HibernateMember records the snapshot with the move to hibernated, only
// from hibernating; ForgetSnapshot clears it; the seed list keeps
// showing the cluster stopped.
func TestHibernateMemberRecordsTheSnapshot(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "sleeper", 5)
	id := runningClusters(t, db, a, 0, 1)[0]
	c, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.HibernateMember(ctx, c.MemberID, []byte(`{"snapshot":7}`), 2.5); cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("hibernated straight from stopped: got %v, want a conflict", err)
	}
	if err := db.SetMemberState(ctx, c.MemberID, cluster.MemberHibernating, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.HibernateMember(ctx, c.MemberID, nil, -1); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Fatalf("a negative size: got %v, want invalid", err)
	}
	if err := db.HibernateMember(ctx, c.MemberID, []byte(`{"snapshot":7}`), 2.5); err != nil {
		t.Fatal(err)
	}
	m, err := db.Member(ctx, c.MemberID)
	if err != nil || m.State != cluster.MemberHibernated || !m.Snapshot || m.SnapshotGB != 2.5 || string(m.Data) != `{"snapshot":7}` || m.ClusterID != id {
		t.Fatalf("hibernated member: %+v, %v", m, err)
	}
	listed, err := db.ListedClusters(ctx, a.ID)
	if err != nil || len(listed) != 1 || listed[0].Status != cluster.Stopped {
		t.Fatalf("seed list: %v, %v; want the cluster stopped", listed, err)
	}
	if err := db.ForgetSnapshot(ctx, c.MemberID); err != nil {
		t.Fatal(err)
	}
	if m, err := db.Member(ctx, c.MemberID); err != nil || m.Snapshot || m.SnapshotGB != 0 {
		t.Fatalf("after ForgetSnapshot: %+v, %v", m, err)
	}
}

// TestRestoreForgetsTheSnapshotWithTheStart: the start of a hibernated
// member records its new server's data and forgets the snapshot in one
// transaction, so a member is never claimed while it still counts as a
// snapshot without a server.
func TestRestoreForgetsTheSnapshotWithTheStart(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "sleeper", 5)
	id := runningClusters(t, db, a, 0, 1)[0]
	c, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, c.MemberID, cluster.MemberHibernating, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.HibernateMember(ctx, c.MemberID, []byte(`{"snapshot":7}`), 2.5); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running,
		MemberState: cluster.MemberClaimed, MemberData: []byte(`{"server":9}`)}); err != nil {
		t.Fatal(err)
	}
	m, err := db.Member(ctx, c.MemberID)
	if err != nil || m.State != cluster.MemberClaimed || m.Snapshot || m.SnapshotGB != 0 || string(m.Data) != `{"server":9}` {
		t.Fatalf("restored member: %+v, %v; want claimed, its new data, no snapshot", m, err)
	}
}
