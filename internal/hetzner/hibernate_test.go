package hetzner

import (
	"context"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
)

// TestHibernateWithoutMachines drives Hibernate against the fake alone
// (no simulated node): the server is shut down before the snapshot (a
// snapshot of a running disk may be unreadable), the snapshot carries the
// member's labels, the server is deleted; a member with neither server
// nor snapshot is an error; the reconcile keeps the snapshot of a member
// that holds it and deletes orphans.
func TestHibernateWithoutMachines(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, hcloudfake.Config{DefaultDuration: time.Millisecond})
	e.backend.cfg.OrphanGrace = 0
	key, err := e.backend.ensureSSHKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hibernate := func(id string) cluster.Member {
		t.Helper()
		m := cluster.Member{ID: id, Flavor: flavor, State: cluster.MemberHibernating, ClusterID: "c-aaa111"}
		srv, err := e.backend.create(ctx, m, &hcloud.Image{ID: systemImage(t, e)}, "ccx33", key)
		if err != nil {
			t.Fatal(err)
		}
		m.Data = (&data{ServerID: srv.ID, Name: srv.Name, IP: srv.PublicNet.IPv4.IP.String()}).marshal()
		raw, gb, err := e.backend.Hibernate(ctx, m)
		if err != nil {
			t.Fatalf("hibernate %s (its server running): %v", id, err)
		}
		d := mustData(t, raw)
		img, _, err := e.client.Image.GetByID(ctx, d.Snapshot)
		if err != nil || img == nil || img.Status != hcloud.ImageStatusAvailable || float64(img.ImageSize) != gb {
			t.Fatalf("snapshot of %s: %+v, %v", id, img, err)
		}
		if img.Labels[LabelMember] != id || img.Labels[LabelRole] != roleHibernation || img.Labels[LabelInstall] != "test" {
			t.Errorf("snapshot labels: %v", img.Labels)
		}
		if got, _, _ := e.client.Server.GetByID(ctx, srv.ID); got != nil {
			t.Errorf("server %d still there after the hibernation", srv.ID)
		}
		m.Data, m.State, m.Snapshot, m.SnapshotGB = raw, cluster.MemberHibernated, true, gb
		return m
	}
	kept := hibernate("s-keep")
	orphan := hibernate("s-orphan")
	if counts := e.fake.Counts(); counts["POST /servers/{id}/actions/{action}"] < 4 {
		t.Errorf("actions: %v; want a shutdown and a create_image per member", counts)
	}

	gone := cluster.Member{ID: "s-gone", Flavor: flavor, State: cluster.MemberHibernating, Data: []byte(`{"server-id": 999999}`)}
	if _, _, err := e.backend.Hibernate(ctx, gone); err == nil {
		t.Error("hibernate of a member without server or snapshot: no error")
	}

	if _, err := e.backend.Reconcile(ctx, []cluster.Member{kept}); err != nil {
		t.Fatal(err)
	}
	if img, _, _ := e.client.Image.GetByID(ctx, mustData(t, kept.Data).Snapshot); img == nil {
		t.Error("the reconcile deleted the snapshot of a hibernated member")
	}
	if img, _, _ := e.client.Image.GetByID(ctx, mustData(t, orphan.Data).Snapshot); img != nil {
		t.Error("the reconcile kept an orphan hibernation snapshot")
	}
	if err := e.backend.DeleteSnapshot(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if img, _, _ := e.client.Image.GetByID(ctx, mustData(t, kept.Data).Snapshot); img != nil {
		t.Error("DeleteSnapshot left the snapshot")
	}
}

// TestRestoreAdoptsTheServerAnInterruptedRestoreLeft: a restore a restart
// cut short left its server (made from the snapshot, with the member's
// name and labels); the next restore adopts it rather than making a
// second one, and the member's data names it.
func TestRestoreAdoptsTheServerAnInterruptedRestoreLeft(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, hcloudfake.Config{DefaultDuration: time.Millisecond})
	stub := installStub(e.backend)
	key, err := e.backend.ensureSSHKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := cluster.Member{ID: "s-adopt", Flavor: flavor, State: cluster.MemberHibernating, ClusterID: "c-aaa222"}
	srv, err := e.backend.create(ctx, m, &hcloud.Image{ID: systemImage(t, e)}, "ccx33", key)
	if err != nil {
		t.Fatal(err)
	}
	m.Data = (&data{ServerID: srv.ID, Name: srv.Name, IP: srv.PublicNet.IPv4.IP.String()}).marshal()
	raw, _, err := e.backend.Hibernate(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Data, m.State, m.Snapshot = raw, cluster.MemberHibernated, true
	left, err := e.backend.create(ctx, m, &hcloud.Image{ID: mustData(t, raw).Snapshot}, "ccx33", key)
	if err != nil {
		t.Fatalf("the interrupted restore's server: %v", err)
	}
	got, err := e.backend.Restore(ctx, m, func(string) {})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	all, _ := e.client.Server.All(ctx)
	if len(all) != 1 || mustData(t, got).ServerID != left.ID {
		t.Fatalf("servers after the restore: %d, data names %d; want the one left, %d", len(all), mustData(t, got).ServerID, left.ID)
	}
	if stub.bootsOf(m.ID) != 1 {
		t.Errorf("k3s starts on the restored server: %d, want 1", stub.bootsOf(m.ID))
	}
}
