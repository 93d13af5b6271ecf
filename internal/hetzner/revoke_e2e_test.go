package hetzner

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
	"github.com/smek/action/internal/pool"
)

// heldRelease is the backend with its release (the rebuild) held back
// until the test lets it go.
type heldRelease struct {
	*Backend
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

// TestTerminateRevokesBeforeAnswering: once a terminate has been
// answered, the tenant's kubeconfig is refused (401 or 403) at its very
// next request, while the server still runs the old cluster because the
// pool has not rebuilt it yet.
func TestTerminateRevokesBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{machines: true})
	hold := make(chan struct{})
	r := w.start(runOptions{target: 1, max: 1, wrap: func(b *Backend) pool.Backend { return &heldRelease{Backend: b, hold: hold} }})
	t.Cleanup(func() { close(hold) })
	r.await("the pool filled", settled(1))
	life := lifecycle.New(r.db, r.pool, []string{"1.36.3"}, lifecycle.Config{})
	p := cluster.Principal{Account: r.account(), Actor: "token:e2e"}
	created, err := life.Create(ctx, p, cluster.CreateInput{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	tenant := tenantClient(t, created.Kubeconfig.YAML)
	if _, err := tenant.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("tenant before terminate: %v", err)
	}
	if _, err := life.Terminate(ctx, p, created.Cluster.ID, "api"); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	_, err = tenant.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err) {
		t.Errorf("the old kubeconfig right after the terminate was answered: got %v, want 401 or 403", err)
	}
}
