package hetzner

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/local/localtest"
)

// TestCheckClusterSteps runs the check's PVC and LoadBalancer steps
// against a real control plane. The test plays the node's parts the
// control plane lacks, as k3s would: a volume for the claim (bound by the
// real PV controller), the consumer pod running, ServiceLB's address in
// the Service's status and its port 80 (an HTTP server). Then it runs
// them again with nothing playing the node: both fail in time and say
// why.
func TestCheckClusterSteps(t *testing.T) {
	kubeBin := localtest.KubeBin(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }))
	defer web.Close()
	srv := &hcloud.Server{ID: 7}
	srv.PublicNet.IPv4.IP = net.ParseIP("127.0.0.1")
	setUp := func(t *testing.T, timeout time.Duration) (*checker, *kubernetes.Clientset) {
		cp, err := local.StartControlPlane(context.Background(), local.ControlPlaneConfig{Dir: t.TempDir(), BinDir: kubeBin})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Stop(context.Background()) })
		cs, err := kubernetes.NewForConfig(cp.AdminConfig())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := checkBackend(t, func(c *Config) { c.ReadyTimeout = time.Minute })
		c := &checker{b: b, cc: CheckConfig{Image: DefaultCheckImage, PortAddr: func(_ context.Context, _ *hcloud.Server, p int) (string, error) {
			if p != 80 {
				return "", nil
			}
			return strings.TrimPrefix(web.URL, "http://"), nil
		}}}
		// What the bootstrap's readiness waited for: the controllers run.
		err = c.poll(context.Background(), func() (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		b.cfg.ReadyTimeout = timeout
		return c, cs
	}

	t.Run("the node plays its part", func(t *testing.T) {
		ctx := context.Background()
		c, cs := setUp(t, time.Minute)
		defer playNode(ctx, t, cs)()
		if s := c.pvc(ctx, cs, srv); s.Status != CheckOK || !strings.Contains(s.Detail, "bound to check-pv, consumer pod running") {
			t.Errorf("pvc: %+v", s)
		}
		if s := c.loadBalancer(ctx, cs, srv); s.Status != CheckOK || !strings.Contains(s.Detail, `http://127.0.0.1:80/ answered "404 Not Found"`) {
			t.Errorf("loadbalancer: %+v", s)
		}
	})
	t.Run("nobody plays the node", func(t *testing.T) {
		ctx := context.Background()
		c, cs := setUp(t, 2*time.Second)
		if s := c.pvc(ctx, cs, srv); s.Status != CheckFail || !strings.Contains(s.Detail, "not bound with a running consumer within 2s") {
			t.Errorf("pvc without a provisioner: %+v", s)
		}
		if s := c.loadBalancer(ctx, cs, srv); s.Status != CheckFail || !strings.Contains(s.Detail, "got no load balancer address within 2s (is ServiceLB disabled?)") {
			t.Errorf("loadbalancer without ServiceLB: %+v", s)
		}
	})
}

// playNode does once what k3s's local-path provisioner, kubelet and
// ServiceLB would do for the check's objects, until stopped.
func playNode(ctx context.Context, t *testing.T, cs *kubernetes.Clientset) (stop func()) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		until := func(what string, done func() bool) bool {
			for ctx.Err() == nil {
				if done() {
					return true
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			t.Errorf("playing the node: %s: %v", what, ctx.Err())
			return false
		}
		// The volume is there before the claim (pre-bound to it), so the
		// PV controller binds at the claim's first sync.
		ok := until("volume for the claim", func() bool {
			pv := &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: "check-pv"},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")},
					AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					ClaimRef:               &corev1.ObjectReference{Namespace: checkNS, Name: "check"},
					PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/rancher/k3s/storage/check"}},
					NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"node"}}},
					}}}},
				},
			}
			_, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
			return err == nil
		}) && until("consumer pod running", func() bool {
			return running(ctx, cs, "check-pvc")
		}) && until("http pod running", func() bool {
			return running(ctx, cs, checkHTTPPod)
		})
		if !ok {
			return
		}
		until("service address", func() bool {
			svc, err := cs.CoreV1().Services(checkNS).Get(ctx, checkHTTPPod, metav1.GetOptions{})
			if err != nil {
				return false
			}
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
			_, err = cs.CoreV1().Services(checkNS).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
			return err == nil
		})
	}()
	return func() { <-done; cancel() }
}

// running marks a pod Running, as a kubelet would once it started it.
func running(ctx context.Context, cs *kubernetes.Clientset, name string) bool {
	p, err := cs.CoreV1().Pods(checkNS).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	p.Status.Phase = corev1.PodRunning
	_, err = cs.CoreV1().Pods(checkNS).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err == nil
}
