package local

import (
	"context"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// TestHealthyIsTheControlPlanesReadyz: a provisioned member is healthy;
// once its control plane is gone (stopped behind the pool's back, as a
// crash of its processes would leave it) it is not.
func TestHealthyIsTheControlPlanesReadyz(t *testing.T) {
	ctx := context.Background()
	b, err := New(Config{Dir: t.TempDir(), BinDir: kubeBin(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	m := cluster.Member{ID: "s-health", Flavor: cluster.Flavor{K8sVersion: Version, Size: cluster.SizeMid}}
	if m.Data, err = b.Provision(ctx, m); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if err := b.Healthy(ctx, m); err != nil {
		t.Errorf("running member: %v, want healthy", err)
	}
	b.mu.Lock()
	mem := b.running[m.ID]
	b.mu.Unlock()
	for _, p := range mem.cp.procs {
		p.stop(ctx, 0) // killed, not stopped through the backend
	}
	if err := b.Healthy(ctx, m); err == nil {
		t.Errorf("member whose kube-apiserver was killed: healthy, want an error")
	}
}
