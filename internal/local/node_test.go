package local

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/cluster"
)

// nodeBackend returns a backend whose clusters have a kubelet node, or
// skips the test when this machine cannot run one (it fails instead with
// SMEK_REQUIRE_NODES set, as in CI).
func nodeBackend(t *testing.T) *Backend {
	t.Helper()
	bin := kubeBin(t)
	if err := CheckNodeSupport(bin); err != nil {
		if os.Getenv("SMEK_REQUIRE_NODES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	b, err := New(Config{Dir: t.TempDir(), BinDir: bin, Nodes: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return b
}

func TestNodeRunsPods(t *testing.T) {
	b := nodeBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := cluster.Member{ID: "s-node", Flavor: cluster.Flavor{K8sVersion: Version, Size: cluster.SizeMid}}
	if _, err := b.Provision(ctx, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Destroy(context.Background(), m); err != nil {
			t.Error(err)
		}
	})
	mem, _ := b.member(m)
	cs := kubernetes.NewForConfigOrDie(mem.cp.AdminConfig())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo hello from $(hostname); sleep 3600"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase == corev1.PodRunning {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod not running: %+v", p.Status)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
