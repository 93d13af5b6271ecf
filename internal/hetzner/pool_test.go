package hetzner

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
)

// TestPoolConvergesUnderFaults: with 20 % of all API requests failing
// (500, 502, 503, 504, 429 drawn by a seeded generator), the pool fills to
// its target from nothing, rebuilds released members (or deletes them when
// it is back at its target), never hands one out dirty, and ends with
// exactly one server per member.
func TestPoolConvergesUnderFaults(t *testing.T) {
	w := newWorld(t, worldOptions{seed: 7})
	w.fake.SetFaultRate(0.2)
	r := w.start(runOptions{target: 4, parallel: 4})
	r.await("four ready members under faults", settled(4))
	acct := r.account()
	var claimed []cluster.Cluster
	for range 3 {
		_, c := r.claim(acct)
		claimed = append(claimed, c)
	}
	for _, c := range claimed {
		r.terminate(c)
	}
	ms := r.await("the pool settled again", settled(4))
	w.fake.SetFaultRate(0)
	r.checkInventory()
	for _, m := range ms {
		checkNeverDirtyToReady(t, r.db, m.ID)
	}
	counts := w.fake.Counts()
	// Each released member is rebuilt, or deleted when the pool's refills
	// already brought it back to its target: which one depends on how far
	// the refills got, so only the sum is fixed.
	if acts := w.fake.ActionCounts(); counts["POST /servers"] == 0 || acts["rebuild_server"]+acts["delete_server"] < 3 {
		t.Errorf("requests: %v, actions %v", counts, w.fake.ActionCounts())
	}
	t.Logf("requests at 20%% faults: %d %v", w.fake.TotalRequests(), counts)
}

// TestPoolOrphansAndGhosts: a server of the installation that no member
// owns is deleted once older than the grace period; a member whose server
// vanished (ready or serving a cluster) is marked failed and replaced.
func TestPoolOrphansAndGhosts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	r := w.start(runOptions{target: 2})
	ms := r.await("two ready members", settled(2))
	client := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))

	// An orphan: labelled like a node of this installation, for a member the
	// database does not know (a crash before the row was written, say).
	res, _, err := client.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "smek-test-s-lost", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{ID: w.image.ID},
		Labels: map[string]string{LabelInstall: "test", LabelMember: "s-lost", LabelRole: "node"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's server with the same role is never touched.
	if _, _, err := client.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "other-install", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{ID: w.image.ID},
		Labels: map[string]string{LabelInstall: "other", LabelMember: "s-lost", LabelRole: "node"},
	}); err != nil {
		t.Fatal(err)
	}
	if ghosts, err := r.pool.ReconcileBackend(ctx); err != nil || len(ghosts) != 0 {
		t.Fatalf("reconcile within the grace period: %v, %v", ghosts, err)
	}
	if serverStatus(w, res.Server.ID) == "gone" {
		t.Fatalf("the orphan was deleted within its grace period")
	}
	w.clock.Advance(16 * time.Minute)
	if _, err := r.pool.ReconcileBackend(ctx); err != nil {
		t.Fatal(err)
	}
	if st := serverStatus(w, res.Server.ID); st != "gone" {
		t.Errorf("orphan after the grace period: %s, want gone", st)
	}
	foreign := 0
	for _, s := range w.fake.Servers() {
		if s.Name == "other-install" {
			foreign++
		}
	}
	if foreign != 1 {
		t.Errorf("the other installation's server was touched")
	}

	// Ghosts: one ready member and one that serves a cluster lose their
	// servers behind SMEK's back.
	acct := r.account()
	busy, _ := r.claim(acct)
	var idle cluster.Member
	for _, m := range ms {
		if m.ID != busy.ID {
			idle = m
		}
	}
	for _, m := range []cluster.Member{busy, idle} {
		if _, _, err := client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: mustData(t, m.Data).ServerID}); err != nil {
			t.Fatal(err)
		}
	}
	ghosts, err := r.pool.ReconcileBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ghosts)
	want := []string{busy.ID, idle.ID}
	slices.Sort(want)
	if !slices.Equal(ghosts, want) {
		t.Fatalf("ghosts: got %v, want %v", ghosts, want)
	}
	r.pool.Nudge()
	got := r.await("ghosts replaced", func(ms []cluster.Member) bool {
		st := memberStates(ms)
		_, a := st[busy.ID]
		_, b := st[idle.ID]
		return !a && !b && settled(2)(ms)
	})
	r.checkInventory()
	for _, g := range want {
		tr := transitions(t, r.db, g)
		if len(tr) < 2 || !strings.HasSuffix(tr[len(tr)-2], "→failed") || tr[len(tr)-1] != "failed→deleted" {
			t.Errorf("ghost %s: transitions %v, want …→failed, failed→deleted", g, tr)
		}
	}
	if len(got) != 2 {
		t.Errorf("members after the replacement: %v", memberStates(got))
	}
}
