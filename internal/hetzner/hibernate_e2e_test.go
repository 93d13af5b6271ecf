package hetzner

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
)

// TestHibernateAndRestoreKeepTheTenantsData: a claimed member's tenant
// writes a ConfigMap and a file on its PersistentVolume; the member is
// stopped and hibernated (snapshot taken, server deleted); a second
// backend (the provisioner restarted, only the data kept) restores it
// from the snapshot on a new server with a new address, and the tenant
// finds both with the kubeconfig minted then. The snapshot is deleted
// afterwards and nothing is left over.
func TestHibernateAndRestoreKeepTheTenantsData(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
	if _, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1"}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	m := cluster.Member{ID: "s-hib1", Backend: "hetzner", Flavor: flavor, State: cluster.MemberCreating}
	raw, err := e.backend.Provision(ctx, m)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	m.Data, m.State = raw, cluster.MemberReady
	c := cluster.Cluster{ID: "c-hib001", Account: "acme", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	kc, err := e.backend.Claim(ctx, m, c)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	m.State, m.ClusterID = cluster.MemberClaimed, c.ID
	tenant := tenantClient(t, kc.YAML)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: "default"}, Data: map[string]string{"answer": "42"}}
	if _, err := tenant.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("tenant creates a ConfigMap: %v", err)
	}
	tenantClaimBinds(ctx, t, tenant)
	pvc, err := tenant.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := e.backend.admin(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := admin.Clientset().CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read the tenant's volume: %v", err)
	}
	var dir string
	switch {
	case pv.Spec.HostPath != nil:
		dir = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		dir = pv.Spec.Local.Path
	default:
		t.Fatalf("volume %s has no path on the node: %+v", pv.Name, pv.Spec.PersistentVolumeSource)
	}
	file := dir + "/tenant.txt"
	e.onNode(t, m, "install -D -m 0644 /dev/stdin "+file, []byte("written before the hibernation\n"))

	if err := e.backend.Stop(ctx, m); err != nil {
		t.Fatalf("stop: %v", err)
	}
	m.State = cluster.MemberStopped
	oldIP := mustData(t, m.Data).IP
	e.fake.ResetCounts()
	raw, gb, err := e.backend.Hibernate(ctx, m)
	if err != nil {
		t.Fatalf("hibernate: %v", err)
	}
	t.Logf("hibernate: %d requests %v", e.fake.TotalRequests(), e.fake.Counts())
	m.Data, m.State, m.Snapshot, m.SnapshotGB = raw, cluster.MemberHibernated, true, gb
	d := mustData(t, raw)
	if d.Snapshot == 0 || d.ServerID != 0 || gb <= 0 {
		t.Fatalf("hibernated data: %+v, %g GB; want a snapshot, no server, a size", d, gb)
	}
	if all, _ := e.client.Server.All(ctx); len(all) != 0 {
		t.Fatalf("servers after hibernation: %d, want 0", len(all))
	}
	img, _, err := e.client.Image.GetByID(ctx, d.Snapshot)
	if err != nil || img == nil || img.Labels[LabelMember] != "s-hib1" || img.Labels[LabelRole] != roleHibernation || float64(img.ImageSize) != gb {
		t.Fatalf("snapshot %d: %+v, %v; want it labelled with the member, %g GB", d.Snapshot, img, err, gb)
	}
	// A second call (a restart in between) takes up the snapshot made.
	again, gb2, err := e.backend.Hibernate(ctx, m)
	if err != nil || mustData(t, again).Snapshot != d.Snapshot || gb2 != gb {
		t.Fatalf("hibernate again: %s, %g, %v; want the same snapshot", again, gb2, err)
	}

	// The provisioner restarts: a new backend with the same key.
	b2 := e.restartedBackend(t)
	if ghosts, err := b2.Reconcile(ctx, []cluster.Member{m}); err != nil || len(ghosts) != 0 {
		t.Fatalf("reconcile with a hibernated member: ghosts %v, %v", ghosts, err)
	}
	if img, _, _ := e.client.Image.GetByID(ctx, d.Snapshot); img == nil {
		t.Fatal("the reconcile deleted the snapshot of a hibernated member")
	}
	var steps []string
	e.fake.ResetCounts()
	raw, err = b2.Restore(ctx, m, func(s string) { steps = append(steps, s) })
	if err != nil {
		t.Fatalf("restore: %v (steps %q)", err, steps)
	}
	t.Logf("restore: %d requests %v; steps %q", e.fake.TotalRequests(), e.fake.Counts(), steps)
	if len(steps) != 3 {
		t.Errorf("restore progress: %q, want three steps", steps)
	}
	restored := m
	restored.Data, restored.State, restored.Snapshot = raw, cluster.MemberClaimed, false
	nd := mustData(t, raw)
	if nd.ServerID == 0 || nd.Snapshot != 0 || nd.IP == "" {
		t.Fatalf("restored data: %+v", nd)
	}
	t.Logf("address before %s, after %s; restore timings (ms) %v", oldIP, nd.IP, nd.Timings)
	kc, err = b2.Credential(ctx, restored, c)
	if err != nil {
		t.Fatalf("credential after restore: %v", err)
	}
	tenant = tenantClient(t, kc.YAML)
	got, err := tenant.CoreV1().ConfigMaps("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || got.Data["answer"] != "42" {
		t.Fatalf("the tenant's ConfigMap after restore: %+v, %v", got, err)
	}
	if out := e.onNodeWith(t, b2, restored, "cat "+file, nil); out != "written before the hibernation\n" {
		t.Fatalf("the file on the tenant's volume after restore: %q", out)
	}
	if err := b2.DeleteSnapshot(ctx, m); err != nil {
		t.Fatalf("delete snapshot: %v", err)
	}
	if img, _, _ := e.client.Image.GetByID(ctx, d.Snapshot); img != nil {
		t.Errorf("snapshot %d still there after its delete", d.Snapshot)
	}
	if err := b2.DeleteSnapshot(ctx, m); err != nil {
		t.Errorf("delete a snapshot gone already: %v", err)
	}
	if err := b2.Destroy(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if all, _ := e.client.Server.All(ctx); len(all) != 0 {
		t.Errorf("servers left: %d", len(all))
	}
}

// onNode runs cmd on m's server as root over SSH and returns its output.
func (e *env) onNode(t *testing.T, m cluster.Member, cmd string, stdin []byte) string {
	t.Helper()
	return e.onNodeWith(t, e.backend, m, cmd, stdin)
}

func (e *env) onNodeWith(t *testing.T, b *Backend, m cluster.Member, cmd string, stdin []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, d, err := b.server(ctx, m)
	if err != nil || srv == nil {
		t.Fatalf("server of %s: %v, %v", m.ID, srv, err)
	}
	conn, err := b.dial(ctx, srv, &d)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out bytes.Buffer
	if err := runSSH(ctx, conn, cmd, stdin, &out); err != nil {
		t.Fatalf("%s on %s: %v", cmd, m.ID, err)
	}
	return out.String()
}

// restartedBackend is a second backend on e's fake with e's
// configuration: what the provisioner has after a restart.
func (e *env) restartedBackend(t *testing.T) *Backend {
	t.Helper()
	cfg := e.backend.cfg
	cfg.Client = hcloud.NewClient(hcloud.WithEndpoint(e.fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
