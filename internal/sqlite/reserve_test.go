package sqlite

import (
	"context"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// TestReservedClusterIDs: a member reserves the id of the cluster that
// will claim it when it is created and again at every rebuild, never the
// same twice; a claim without an id of its own takes the reservation; one
// with an id keeps it; a failed member gives its reservation up.
func TestReservedClusterIDs(t *testing.T) {
	ctx := context.Background()
	db := openClaimDB(t)
	a := claimAccount(t, db, "acme", 10)
	set := func(id string, states ...cluster.MemberState) {
		t.Helper()
		for _, s := range states {
			if err := db.SetMemberState(ctx, id, s, nil, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	get := func(id string) cluster.Member {
		t.Helper()
		m, err := db.Member(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	m, err := db.CreateMember(ctx, "local", claimFlavor)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReservedID == "" || get(m.ID).ReservedID != m.ReservedID {
		t.Fatalf("new member reserves %q, stored %q", m.ReservedID, get(m.ID).ReservedID)
	}
	set(m.ID, cluster.MemberReady)
	c := newClaim(a, 1, claimFlavor)
	c.ID = ""
	claimed, err := db.ClaimMember(ctx, c, "local")
	if err != nil {
		t.Fatal(err)
	}
	if claimed.ClusterID != m.ReservedID {
		t.Fatalf("claim without an id got %q, want the reservation %q", claimed.ClusterID, m.ReservedID)
	}
	if _, err := db.Cluster(ctx, a.ID, m.ReservedID); err != nil {
		t.Fatalf("cluster under the reserved id: %v", err)
	}

	// Released and rebuilt: a fresh reservation, kept across an
	// interrupted rebuild taken up again.
	if _, err := db.UpdateCluster(ctx, claimed.ClusterID, cluster.Change{To: cluster.Terminated, ReleaseMember: true, MemberState: cluster.MemberDirty}); err != nil {
		t.Fatal(err)
	}
	set(m.ID, cluster.MemberRebuilding)
	next := get(m.ID).ReservedID
	if next == "" || next == m.ReservedID {
		t.Fatalf("rebuild reserved %q after %q: want a fresh id", next, m.ReservedID)
	}
	set(m.ID, cluster.MemberRebuilding)
	if got := get(m.ID).ReservedID; got != next {
		t.Fatalf("rebuild taken up again reserved %q, want %q kept", got, next)
	}
	set(m.ID, cluster.MemberReady)

	// A claim that brings its id keeps it.
	own := newClaim(a, 2, claimFlavor)
	claimed, err = db.ClaimMember(ctx, own, "local")
	if err != nil {
		t.Fatal(err)
	}
	if claimed.ClusterID != own.ID {
		t.Fatalf("claim with id %s got %s", own.ID, claimed.ClusterID)
	}

	// A failed member gives its reservation up.
	other, err := db.CreateMember(ctx, "local", claimFlavor)
	if err != nil {
		t.Fatal(err)
	}
	set(other.ID, cluster.MemberFailed)
	if got := get(other.ID).ReservedID; got != "" {
		t.Fatalf("failed member still reserves %q", got)
	}
}
