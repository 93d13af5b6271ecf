package hetzner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
)

// TestCreateAdoptsAfterLostResponse: the create succeeds at the API but
// its answer is lost (a 500 after the effect); the retry meets the name
// taken by its own server and adopts it. One server, not two.
func TestCreateAdoptsAfterLostResponse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, hcloudfake.Config{})
	e.fake.InjectFaults("POST /servers", hcloudfake.Fault{Status: 500, Code: hcloudfake.CodeServerError, AfterEffect: true})
	key, err := e.backend.ensureSSHKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := cluster.Member{ID: "s-7", Flavor: flavor}
	srv, err := e.backend.create(ctx, m, &hcloud.Image{ID: systemImage(t, e)}, "ccx33", key)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	all, _ := e.client.Server.All(ctx)
	if len(all) != 1 || all[0].ID != srv.ID {
		t.Fatalf("servers: got %d, want exactly the adopted one", len(all))
	}
	// A Destroy of a member whose data was never written finds the server
	// by its name and label.
	if err := e.backend.Destroy(ctx, m); err != nil {
		t.Fatal(err)
	}
	if all, _ := e.client.Server.All(ctx); len(all) != 0 {
		t.Errorf("servers after destroy: got %d, want 0", len(all))
	}
}

func systemImage(t *testing.T, e *env) int64 {
	t.Helper()
	img, _, err := e.client.Image.GetByNameAndArchitecture(context.Background(), "ubuntu-24.04", hcloud.ArchitectureX86)
	if err != nil || img == nil {
		t.Fatalf("system image: %v %v", img, err)
	}
	return img.ID
}

// TestCreateConvergesUnderFaults: with 20 % of requests failing (500, 502,
// 503, 504, 429), every create still ends with exactly one server.
func TestCreateConvergesUnderFaults(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, hcloudfake.Config{Seed: 3})
	key, err := e.backend.ensureSSHKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img := systemImage(t, e)
	e.fake.SetFaultRate(0.2)
	for i := range 20 {
		m := cluster.Member{ID: "f-" + string(rune('a'+i)), Flavor: flavor}
		if _, err := e.backend.create(ctx, m, &hcloud.Image{ID: img}, "ccx33", key); err != nil {
			t.Fatalf("create %s: %v", m.ID, err)
		}
	}
	e.fake.SetFaultRate(0)
	all, _ := e.client.Server.All(ctx)
	if len(all) != 20 {
		t.Errorf("servers: got %d, want 20", len(all))
	}
	t.Logf("requests for 20 creates at 20%% faults: %v", e.fake.Counts())
}

// TestReconcileDeletesOrphansAndReportsGhosts.
func TestReconcileDeletesOrphansAndReportsGhosts(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Now())
	e := newEnv(t, false, hcloudfake.Config{Clock: clock})
	e.backend.cfg.Clock = clock
	key, _ := e.backend.ensureSSHKey(ctx)
	img := systemImage(t, e)
	known := cluster.Member{ID: "k-1", Flavor: flavor, State: cluster.MemberReady}
	srv, err := e.backend.create(ctx, known, &hcloud.Image{ID: img}, "ccx33", key)
	if err != nil {
		t.Fatal(err)
	}
	known.Data = (&data{ServerID: srv.ID}).marshal()
	if _, err := e.backend.create(ctx, cluster.Member{ID: "orphan", Flavor: flavor}, &hcloud.Image{ID: img}, "ccx33", key); err != nil {
		t.Fatal(err)
	}
	// Someone else's server is never touched.
	if _, _, err := e.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "foreign", ServerType: &hcloud.ServerType{Name: "cx22"}, Image: &hcloud.Image{ID: img}}); err != nil {
		t.Fatal(err)
	}
	ghost := cluster.Member{ID: "g-1", Flavor: flavor, State: cluster.MemberClaimed, Data: (&data{ServerID: 999999}).marshal()}

	ghosts, err := e.backend.Reconcile(ctx, []cluster.Member{known, ghost})
	if err != nil || len(ghosts) != 1 || ghosts[0] != "g-1" {
		t.Fatalf("reconcile: got %v, %v; want ghost g-1", ghosts, err)
	}
	if all, _ := e.client.Server.All(ctx); len(all) != 3 {
		t.Errorf("within the grace period: got %d servers, want 3", len(all))
	}
	clock.Advance(16 * time.Minute)
	if _, err := e.backend.Reconcile(ctx, []cluster.Member{known, ghost}); err != nil {
		t.Fatal(err)
	}
	all, _ := e.client.Server.All(ctx)
	names := map[string]bool{}
	for _, s := range all {
		names[s.Name] = true
	}
	if len(all) != 2 || !names["foreign"] || !names[srv.Name] {
		t.Errorf("after the grace period: got %v, want the known and the foreign server", names)
	}
}

func TestSealRoundTripAndTamper(t *testing.T) {
	s, err := newSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.seal([]byte("secret kubeconfig"), "s-1")
	if got, err := s.open(sealed, "s-1"); err != nil || string(got) != "secret kubeconfig" {
		t.Errorf("open: got %q, %v", got, err)
	}
	if _, err := s.open(sealed, "s-2"); err == nil {
		t.Errorf("opened with another member's id")
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Errorf("accepted a 5-byte key")
	}
}

func TestK8sVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.36.3+k3s1": "1.36.3", "v1.27.4+k3s2": "1.27.4"} {
		if got, err := K8sVersion(in); err != nil || got != want {
			t.Errorf("K8sVersion(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"1.36.3", "v1.36+k3s1", "v1.36.3", ""} {
		if _, err := K8sVersion(bad); err == nil {
			t.Errorf("K8sVersion(%q): got no error", bad)
		}
	}
}

// TestImageBuildCleansUpAfterAFailingStep: whichever step fails — a node
// file the builder refuses, the shutdown refused by the API, the snapshot
// action ending in error — the builder server is deleted and no snapshot
// is left.
func TestImageBuildCleansUpAfterAFailingStep(t *testing.T) {
	cases := map[string]struct {
		ic     ImageConfig
		inject func(*hcloudfake.Server)
		want   string
	}{
		"manifest refused": {
			ic:   ImageConfig{K3sVersion: "v1.36.3+k3s1", Manifests: map[string][]byte{"../escape.yaml": []byte("x")}},
			want: "plain file name",
		},
		"shutdown refused": {
			ic: ImageConfig{K3sVersion: "v1.36.3+k3s1"},
			inject: func(f *hcloudfake.Server) {
				f.InjectFaults("POST /servers/{id}/actions/{action}", hcloudfake.Fault{Status: 403, Code: hcloudfake.CodeForbidden})
			},
			want: "shut down builder",
		},
		"snapshot action fails": {
			ic:     ImageConfig{K3sVersion: "v1.36.3+k3s1"},
			inject: func(f *hcloudfake.Server) { f.FailNextAction("create_image", "image_failed", "disk unreadable") },
			want:   "create snapshot",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
			if c.inject != nil {
				c.inject(e.fake)
			}
			_, err := e.backend.BuildImage(ctx, c.ic)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("build: got %v, want an error about %q", err, c.want)
			}
			if all, _ := e.client.Server.All(ctx); len(all) != 0 {
				t.Errorf("servers after the failed build: %d, want 0 (builder deleted)", len(all))
			}
			if e.fake.Counts()["DELETE /servers/{id}"] != 1 {
				t.Errorf("builder deletes: %v", e.fake.Counts())
			}
			imgs, _ := e.client.Image.AllWithOpts(ctx, hcloud.ImageListOpts{Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}})
			if len(imgs) != 0 {
				t.Errorf("snapshots after the failed build: %d", len(imgs))
			}
		})
	}
}
