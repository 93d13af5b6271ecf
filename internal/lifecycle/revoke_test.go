package lifecycle_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/local/localtest"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/sqlite"
)

// heldRelease is the local backend with its clean-up held back until the
// test lets it go: what the pool does after a terminate must not be what
// takes the tenant's access away.
type heldRelease struct {
	*local.Backend
	hold chan struct{}
}

func (b *heldRelease) Release(ctx context.Context, m cluster.Member) (bool, []byte, error) {
	<-b.hold
	return b.Backend.Release(ctx, m)
}

func (b *heldRelease) Destroy(ctx context.Context, m cluster.Member) error {
	<-b.hold
	return b.Backend.Destroy(ctx, m)
}

// TestTerminateRevokesBeforeAnswering (local backend): once a terminate
// has been answered, the tenant's kubeconfig is refused (401 or 403) at
// its very next request — while the member's control plane still runs,
// because the pool has not cleaned it up yet.
func TestTerminateRevokesBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	lb, err := local.New(local.Config{Dir: t.TempDir(), BinDir: localtest.KubeBin(t)})
	if err != nil {
		t.Fatal(err)
	}
	b := &heldRelease{Backend: lb, hold: make(chan struct{})}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	p := pool.New(db, b, pool.Config{Targets: map[cluster.Flavor]int{{K8sVersion: local.Version, Size: cluster.SizeMid}: 1}})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { p.Run(runCtx); close(done) }()
	t.Cleanup(func() {
		close(b.hold)
		cancel()
		<-done
		lb.Close(context.Background())
		db.Close()
	})
	svc := lifecycle.New(db, p, []string{local.Version}, lifecycle.Config{})
	a, err := db.EnsureAccount(ctx, "acme", sqlite.AccountLimits{})
	if err != nil {
		t.Fatal(err)
	}
	pr := cluster.Principal{Account: a, Actor: "token:acme"}
	wait := 3 * time.Minute
	res, err := svc.Create(ctx, pr, cluster.CreateInput{Wait: &wait})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	tenant := kubeClient(t, res.Kubeconfig.YAML)
	if _, err := tenant.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("tenant before terminate: %v", err)
	}
	if _, err := svc.Terminate(ctx, pr, res.Cluster.ID, "api"); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	_, err = tenant.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err) {
		t.Errorf("the old kubeconfig right after the terminate was answered: got %v, want 401 or 403", err)
	}
}

func kubeClient(t *testing.T, kubeconfig []byte) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
