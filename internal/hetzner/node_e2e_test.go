package hetzner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// within polls cond every 100 ms until it holds or d passes.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// publicPorts asks the fake which loopback address stands for each public
// port of a server.
func publicPorts(t *testing.T, fakeURL string, id int64) map[string]string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/_hcloudfake/servers/%d", fakeURL, id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Ports map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Ports
}

// TestTenantGetsStorageAndServiceLB: on every flavor, a cluster handed out
// by the backend binds a tenant's claim for a consumer pod (k3s's real
// local-path-provisioner on the simulated node; readiness proved it
// before the claim), a baseline tenant still gets no privileged pod, not
// directly and not through a Deployment, and a LoadBalancer Service on 80
// gets the server's public address and answers HTTP on the server's
// public port 80, while ports the node needs stay refused.
func TestTenantGetsStorageAndServiceLB(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
	if _, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1"}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	for i, privileged := range []bool{false, true} {
		f := flavor
		f.Privileged = privileged
		t.Run(map[bool]string{false: "baseline", true: "privileged"}[privileged], func(t *testing.T) {
			m := cluster.Member{ID: fmt.Sprintf("s-%d", i+1), Backend: "hetzner", Flavor: f, State: cluster.MemberCreating}
			raw, err := e.backend.Provision(ctx, m)
			if err != nil {
				t.Fatalf("provision: %v", err)
			}
			m.Data, m.State = raw, cluster.MemberReady
			d := mustData(t, raw)
			t.Logf("timings: %v", d.Timings)
			c := cluster.Cluster{ID: cluster.ID(fmt.Sprintf("c-stor%02d", i)), Account: "acme", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			kc, err := e.backend.Claim(ctx, m, c)
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			t.Cleanup(func() { _ = e.backend.Destroy(context.Background(), m) })
			tenant := tenantClient(t, kc.YAML)
			tenantClaimBinds(ctx, t, tenant)
			if !privileged {
				tenantGetsNoPrivilegedPod(ctx, t, tenant)
				tenantServiceLB(ctx, t, tenant, e.fake.URL, d)
			}
		})
	}
}

func tenantClaimBinds(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("tenant creates a claim: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "consumer", Namespace: "default"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("tenant creates the consumer: %v", err)
	}
	within(t, time.Minute, "the tenant's claim bound", func() bool {
		got, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.ClaimBound
	})
}

func tenantGetsNoPrivilegedPod(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	yes := true
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"},
		SecurityContext: &corev1.SecurityContext{Privileged: &yes}}}}
	for _, ns := range []string{"default", "kube-system"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: ns}, Spec: spec}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err == nil {
			t.Errorf("a baseline tenant created a privileged pod in %s", ns)
		}
	}
	labels := map[string]string{"app": "root"}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return // refused up front: as good
	}
	var reason string
	within(t, time.Minute, "the ReplicaSet's refused pod", func() bool {
		rss, err := cs.AppsV1().ReplicaSets("default").List(ctx, metav1.ListOptions{LabelSelector: "app=root"})
		if err != nil || len(rss.Items) == 0 {
			return false
		}
		for _, c := range rss.Items[0].Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				reason = c.Message
				return true
			}
		}
		return false
	})
	if !strings.Contains(reason, "privileged") {
		t.Errorf("the ReplicaSet's failure: got %q, want a refusal of the privileged container", reason)
	}
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=root"})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods of the privileged Deployment: got %v, %v; want none", pods, err)
	}
}

func tenantServiceLB(ctx context.Context, t *testing.T, cs kubernetes.Interface, fakeURL string, d data) {
	t.Helper()
	labels := map[string]string{"app": "web"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox", Args: []string{"httpd", "-f", "-p", "8080"}}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("tenant creates the web pod: %v", err)
	}
	svc := func(name string, port int32) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
				Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(8080)}}},
		}
	}
	for _, port := range []int32{22, 6443, 10250} {
		_, err := cs.CoreV1().Services("default").Create(ctx, svc(fmt.Sprintf("p%d", port), port), metav1.CreateOptions{})
		if err == nil || !apierrors.IsInvalid(err) && !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), fmt.Sprint(port)) {
			t.Errorf("LoadBalancer Service on %d: got %v, want a refusal naming the port", port, err)
		}
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc("web", 80), metav1.CreateOptions{}); err != nil {
		t.Fatalf("tenant creates a LoadBalancer Service on 80: %v", err)
	}
	within(t, time.Minute, "the Service's address", func() bool {
		got, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(got.Status.LoadBalancer.Ingress) == 1 && got.Status.LoadBalancer.Ingress[0].IP == d.IP
	})
	var addr string
	within(t, time.Minute, "public port 80 of the server", func() bool {
		addr = publicPorts(t, fakeURL, d.ServerID)["80"]
		return addr != ""
	})
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET on the server's public port 80: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "404 Not Found") {
		t.Errorf("GET / on the server's port 80: got %d %q, want busybox httpd's 404", resp.StatusCode, body)
	}
}

// TestBootstrapWritesTheFlavorsPolicyManifest: the golden image carries
// the baseline policy bundle as an auto-deploy manifest, and k3s applies
// that folder again at every start, a reboot by host maintenance too,
// over what SMEK applied. So the bootstrap replaces the file by the
// flavor's bundle: a privileged cluster must not fall back to baseline
// rules after a reboot.
func TestBootstrapWritesTheFlavorsPolicyManifest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
	baseline, err := PolicyManifest(flavor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1", Manifests: map[string][]byte{"policy.yaml": baseline}}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	f := flavor
	f.Privileged = true
	m := cluster.Member{ID: "p-1", Backend: "hetzner", Flavor: f, State: cluster.MemberCreating}
	raw, err := e.backend.Provision(ctx, m)
	m.Data = raw
	t.Cleanup(func() { _ = e.backend.Destroy(context.Background(), m) })
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	node := e.fake.MachineOf(mustData(t, raw).ServerID).(*k3snode.Node)
	got, err := os.ReadFile(filepath.Join(node.Disk(), policyManifest))
	if err != nil {
		t.Fatal(err)
	}
	want, err := PolicyManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(want, baseline) {
		t.Fatal("the privileged and the baseline bundle are the same: the test proves nothing")
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s after the bootstrap of a privileged member is not the privileged bundle (baseline: %v)", policyManifest, bytes.Equal(got, baseline))
	}
}
