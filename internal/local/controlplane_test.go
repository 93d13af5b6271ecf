package local

import (
	"context"
	corev1 "k8s.io/api/core/v1"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// kubeBin returns the folder with the Kubernetes binaries, or skips the test
// when they have not been built (make kube-bin). CI builds them first.
func kubeBin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SMEK_KUBE_BIN")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "bin", "kube")
	}
	if err := CheckBinaries(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return dir
}

func TestControlPlaneStartStopRestart(t *testing.T) {
	bin := kubeBin(t)
	ctx := context.Background()
	dir := t.TempDir()
	cp, err := StartControlPlane(ctx, ControlPlaneConfig{Dir: dir, BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })
	cs := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1ConfigMap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.36.3" {
		t.Errorf("server version %q, want v1.36.3", v.GitVersion)
	}
	if err := cp.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A stopped control plane keeps its data and comes back on the same
	// address.
	cp2, err := StartControlPlane(ctx, ControlPlaneConfig{Dir: dir, BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp2.Stop(context.Background()) })
	if cp2.URL() != cp.URL() {
		t.Errorf("URL after restart %s, want %s", cp2.URL(), cp.URL())
	}
	cs = kubernetes.NewForConfigOrDie(cp2.AdminConfig())
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, corev1ConfigMap.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("config map after restart: %v", err)
	}
}

var corev1ConfigMap = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives-restart"}, Data: map[string]string{"k": "v"}}

// TestControlPlaneFromARelativeFolder: `make run` keeps its data in
// ./data; every process of the control plane must still find its files.
func TestControlPlaneFromARelativeFolder(t *testing.T) {
	bin := kubeBin(t)
	ctx := context.Background()
	t.Chdir(t.TempDir())
	cp, err := StartControlPlane(ctx, ControlPlaneConfig{Dir: "data/cp", BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cp.Stop(context.Background()) })
	cs := kubernetes.NewForConfigOrDie(cp.AdminConfig())
	// The default ServiceAccount is made by kube-controller-manager, which
	// reads its kubeconfig's certificate paths.
	deadline := time.After(90 * time.Second)
	for {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			break
		}
		w, werr := cs.CoreV1().ServiceAccounts("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=default"})
		if werr != nil {
			t.Fatal(werr)
		}
		select {
		case <-w.ResultChan():
		case <-deadline:
			t.Fatalf("no default service account after 90 s: kube-controller-manager is not working; its log:\n%s", cp.procs[len(cp.procs)-1].tail(20))
		}
		w.Stop()
	}
}
