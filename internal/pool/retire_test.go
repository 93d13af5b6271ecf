package pool

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

// destroyCounter is a backend that only counts destroys; the methods a
// retirement never calls are left to the nil interface.
type destroyCounter struct {
	Backend
	destroys int
}

func (*destroyCounter) Name() string { return "count" }
func (b *destroyCounter) Destroy(context.Context, cluster.Member) error {
	b.destroys++
	return nil
}

// TestRetireNeverTakesAClaimedMember: a member Plan found surplus while
// ready, but that a create claimed before its retirement ran, keeps
// serving: the store refuses claimed → deleted and nothing is destroyed.
func TestRetireNeverTakesAClaimedMember(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := &destroyCounter{}
	p := New(db, b, Config{})
	m, err := db.CreateMember(ctx, b.Name(), cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []cluster.MemberState{cluster.MemberReady, cluster.MemberClaimed} {
		if err := db.SetMemberState(ctx, m.ID, s, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	m.State = cluster.MemberReady // what Plan saw
	p.retire(ctx, m, "surplus")
	got, err := db.Member(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != cluster.MemberClaimed || b.destroys != 0 {
		t.Fatalf("member %s, %d destroys: want it claimed and untouched", got.State, b.destroys)
	}
	// The same retirement of a member still ready goes through.
	m2, err := db.CreateMember(ctx, b.Name(), m.Flavor)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetMemberState(ctx, m2.ID, cluster.MemberReady, nil, ""); err != nil {
		t.Fatal(err)
	}
	p.retire(ctx, m2, "surplus")
	if got, err := db.Member(ctx, m2.ID); err != nil || got.State != cluster.MemberDeleted || b.destroys != 1 {
		t.Fatalf("ready member: %v, %v, %d destroys: want deleted, destroyed once", got.State, err, b.destroys)
	}
}
