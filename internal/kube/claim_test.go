package kube_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/local/localtest"
)

// startClaimable starts a control plane as the local backend makes a pool
// member: tenant policy applied, node registered.
func startClaimable(t *testing.T) *rest.Config {
	t.Helper()
	ctx := context.Background()
	o := policy.Options{LocalPathStorageClass: true}
	cp, err := local.StartControlPlane(ctx, local.ControlPlaneConfig{
		Dir: t.TempDir(), BinDir: localtest.KubeBin(t),
		AdmissionConfig: policy.AdmissionConfig(o), ExtraAPIServerFlags: policy.APIServerFlags(o),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })
	if err := policy.Apply(ctx, cp.AdminConfig(), o); err != nil {
		t.Fatal(err)
	}
	admin, err := kube.NewAdmin(cp.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RegisterNode(ctx, "node", nil); err != nil {
		t.Fatal(err)
	}
	return cp.AdminConfig()
}

// gate is a transport that records every request and holds each one
// until want requests are in flight at once, or until the request's
// context ends: requests sent one after the other never get through.
type gate struct {
	next http.RoundTripper
	want int

	mu       sync.Mutex
	seen     []string
	inFlight int
	open     chan struct{}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.seen = append(g.seen, r.Method+" "+r.URL.Path)
	if g.inFlight++; g.inFlight == g.want {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return g.next.RoundTrip(r)
}

// TestClaimIsOneConcurrentRound: with the node labelled when the member
// became ready, a claim sends two requests (the ownership record and the
// TokenRequest), both at once: the gate lets none through until both are
// in flight. A node without the cluster's label gets it in the same round.
func TestClaimIsOneConcurrentRound(t *testing.T) {
	cfg := startClaimable(t)
	ctx := context.Background()
	admin, err := kube.NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reserved := cluster.ID("c-resvd1")
	if err := admin.LabelNodes(ctx, reserved); err != nil { // at ready time
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		id       cluster.ID
		labelled bool
		want     []string
	}{
		{"labelled at ready time", reserved, true, []string{
			"POST /api/v1/namespaces/smek-system/configmaps",
			"POST /api/v1/namespaces/smek-system/serviceaccounts/tenant/token",
		}},
		{"not labelled", "c-other1", false, []string{
			"GET /api/v1/nodes",
			"POST /api/v1/namespaces/smek-system/configmaps",
			"POST /api/v1/namespaces/smek-system/serviceaccounts/tenant/token",
			// The node's patch follows the list in the same goroutine,
			// and the ConfigMap exists from the first claim: it is
			// updated.
			"PATCH /api/v1/nodes/node",
			"PUT /api/v1/namespaces/smek-system/configmaps/smek-cluster",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gate{want: 3, open: make(chan struct{})}
			if tc.labelled {
				g.want = 2
			}
			gated := rest.CopyConfig(cfg)
			gated.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { g.next = rt; return g }
			claimer, err := kube.NewAdmin(gated)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			now := time.Now()
			c := cluster.Cluster{ID: tc.id, Account: "acme", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			kc, err := claimer.Claim(cctx, c, tc.labelled)
			if err != nil {
				t.Fatalf("claim (requests %q): %v", g.seen, err)
			}
			got := slices.Clone(g.seen)
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(got, want) {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !strings.Contains(string(kc.YAML), string(tc.id)) {
				t.Errorf("kubeconfig does not name %s:\n%s", tc.id, kc.YAML)
			}
			node, err := admin.Clientset().CoreV1().Nodes().Get(ctx, "node", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := node.Labels[kube.NodeLabel]; got != string(tc.id) {
				t.Errorf("node label %s=%q, want %q", kube.NodeLabel, got, tc.id)
			}
			cm, err := admin.Clientset().CoreV1().ConfigMaps(kube.SystemNamespace).Get(ctx, kube.OwnershipConfigMap, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["cluster-id"] != string(tc.id) || cm.Data["account"] != "acme" {
				t.Errorf("ownership record %v, want cluster-id %s, account acme", cm.Data, tc.id)
			}
		})
	}
}
