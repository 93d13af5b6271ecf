package k3snode

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/local/localtest"
)

// k3sNode boots a node with k3s installed and config.yaml written, starts
// k3s and returns the node with an admin client from k3s.yaml.
func k3sNode(t *testing.T, config string, manifests map[string]string) (*Node, kubernetes.Interface) {
	t.Helper()
	bin := localtest.KubeBin(t)
	if _, err := os.Stat(filepath.Join(bin, "local-path-provisioner")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("local-path-provisioner missing in %s: make kube-bin builds it", bin)
		}
		t.Skipf("local-path-provisioner missing in %s: make kube-bin builds it", bin)
	}
	n, err := NewNode(Config{Dir: t.TempDir(), KubeBin: bin}, hcloudfake.MachineSpec{ServerID: 9, Name: "node-9"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	var out, errs bytes.Buffer
	sh := func(cmd string, stdin string) {
		t.Helper()
		if code := n.run(cmd, strings.NewReader(stdin), &out, &errs); code != 0 {
			t.Fatalf("%s: exit %d: %s", cmd, code, errs.String())
		}
	}
	sh("curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_VERSION=v1.36.3+k3s1 sh -", "")
	sh("install -D -m 0600 /dev/stdin "+K3sConfig, config)
	for name, doc := range manifests {
		sh("install -D -m 0600 /dev/stdin "+ManifestsDir+"/"+name, doc)
	}
	sh("systemctl start k3s", "")
	kc, err := n.readFile(K3sKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, cs
}

// waitDefaultServiceAccount waits for the sign that the controllers run:
// pods cannot be created before it.
func waitDefaultServiceAccount(t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	eventually(t, time.Minute, "the default ServiceAccount", func() bool {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
		return err == nil
	})
}

// eventually polls cond every 100 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestK3sDeploysManifestsAfterStartReturns: as on k3s, `systemctl start
// k3s` returns once the API serves; the packaged components and the
// auto-deploy manifests are applied a moment later by the deploy
// controller, not inside the start.
func TestK3sDeploysManifestsAfterStartReturns(t *testing.T) {
	ctx := context.Background()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-manifest\n  namespace: default\ndata:\n  a: b\n"
	_, cs := k3sNode(t, "node-name: node-9\n", map[string]string{"smek-test.yaml": cm})
	if _, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "from-manifest", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("auto-deploy manifest right after start: got %v, want not found yet", err)
	}
	if _, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("packaged local-storage right after start: got %v, want not found yet", err)
	}
	eventually(t, time.Minute, "the manifest's ConfigMap", func() bool {
		_, err := cs.CoreV1().ConfigMaps("default").Get(ctx, "from-manifest", metav1.GetOptions{})
		return err == nil
	})
	eventually(t, time.Minute, "k3s's local-storage component", func() bool {
		sc, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
		if err != nil {
			return false
		}
		_, err = cs.AppsV1().Deployments("kube-system").Get(ctx, "local-path-provisioner", metav1.GetOptions{})
		return err == nil && sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true"
	})
}

// TestLocalPathProvisionerBindsClaims: the real local-path-provisioner,
// run from k3s's local-storage manifest, provisions a claim for a
// consumer pod through a helper pod on both kube-apiserver settings SMEK
// uses; the stand-in kubelet does what the helper's setup and teardown
// scripts do on the node's disk.
func TestLocalPathProvisionerBindsClaims(t *testing.T) {
	for _, privileged := range []bool{false, true} {
		name := map[bool]string{false: "allow-privileged=false", true: "allow-privileged=true"}[privileged]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cfg := "node-name: node-9\nkube-apiserver-arg:\n  - \"allow-privileged=" + map[bool]string{false: "false", true: "true"}[privileged] + "\"\n"
			n, cs := k3sNode(t, cfg, nil)
			waitDefaultServiceAccount(t, cs)
			eventually(t, time.Minute, "the local-path StorageClass", func() bool {
				_, err := cs.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
				return err == nil
			})
			pvc := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}
			if _, err := cs.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
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
				t.Fatal(err)
			}
			var volume string
			eventually(t, 90*time.Second, "the claim bound", func() bool {
				got, err := cs.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
				if err != nil || got.Status.Phase != corev1.ClaimBound {
					return false
				}
				volume = got.Spec.VolumeName
				return true
			})
			pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pv.Spec.Local == nil || !strings.HasPrefix(pv.Spec.Local.Path, "/var/lib/rancher/k3s/storage/"+volume) {
				t.Fatalf("persistent volume: got %+v, want a local volume under /var/lib/rancher/k3s/storage", pv.Spec.PersistentVolumeSource)
			}
			dir, _ := n.path(pv.Spec.Local.Path)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("volume folder on the node: %v", err)
			}
			eventually(t, time.Minute, "the consumer running", func() bool {
				got, err := cs.CoreV1().Pods("default").Get(ctx, "consumer", metav1.GetOptions{})
				return err == nil && got.Status.Phase == corev1.PodRunning
			})

			if err := cs.CoreV1().Pods("default").Delete(ctx, "consumer", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "data", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 90*time.Second, "the volume deleted", func() bool {
				_, err := cs.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
				return apierrors.IsNotFound(err)
			})
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("volume folder after teardown: got %v, want it removed", err)
			}
			pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if strings.HasPrefix(p.Name, "helper-pod-") {
					t.Errorf("helper pod %s left behind (phase %s)", p.Name, p.Status.Phase)
				}
			}
		})
	}
}

// TestServiceLBPublishesOnPublicPort: a LoadBalancer Service gets the
// node's address as its ingress, as k3s's ServiceLB gives it, and its
// port is opened on the machine's public interface, relaying to a pod
// that runs busybox httpd. An endpoint that serves nothing answers
// nothing.
func TestServiceLBPublishesOnPublicPort(t *testing.T) {
	ctx := context.Background()
	n, cs := k3sNode(t, "node-name: node-9\n", nil)
	waitDefaultServiceAccount(t, cs)
	labels := map[string]string{"app": "web"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: "busybox", Args: []string{"httpd", "-f", "-p", "8080"},
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
		}}},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dss, _ := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{})
		for _, d := range dss.Items {
			t.Logf("state: ds %s status %+v", d.Name, d.Status)
		}
		pods, _ := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			t.Logf("state: pod %s/%s node=%q phase=%s ip=%s %+v", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, p.Status.ContainerStatuses)
		}
		nodes, _ := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		for _, nd := range nodes.Items {
			t.Logf("state: node %s taints=%v unsched=%v", nd.Name, nd.Spec.Taints, nd.Spec.Unschedulable)
		}
		logs, _ := os.ReadFile(filepath.Join(n.Disk(), simDir, "logs", "kube-controller-manager.log"))
		for _, l := range strings.Split(string(logs), "\n") {
			if strings.Contains(strings.ToLower(l), "daemon") {
				t.Logf("state: kcm %.300s", l)
			}
		}
		evs, _ := cs.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{})
		for _, e := range evs.Items {
			t.Logf("state: event %s %s %s", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	})
	eventually(t, time.Minute, "the Service's load balancer ingress", func() bool {
		got, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(got.Status.LoadBalancer.Ingress) == 1 && got.Status.LoadBalancer.Ingress[0].IP == "127.0.0.1"
	})
	eventually(t, time.Minute, "public port 80", func() bool { return n.Addr(80) != "" })
	hc := &http.Client{Timeout: 10 * time.Second}
	var resp *http.Response
	eventually(t, time.Minute, "an answer on public port 80", func() bool {
		var err error
		resp, err = hc.Get("http://" + n.Addr(80) + "/")
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "404 Not Found") {
		t.Errorf("GET / on public port 80: got %d %q, want busybox httpd's 404", resp.StatusCode, body)
	}
	ds, err := cs.AppsV1().DaemonSets("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "svccontroller.k3s.cattle.io/svcname=web"})
	if err != nil || len(ds.Items) != 1 || ds.Items[0].Spec.Template.Spec.Containers[0].Ports[0].HostPort != 80 {
		t.Errorf("svclb DaemonSet: got %+v, %v", ds, err)
	}

	// A pod that serves nothing: its Service's public port opens (the
	// svclb pod runs) but the connection finds no listener behind it.
	mute := pod.DeepCopy()
	mute.Name, mute.Labels = "mute", map[string]string{"app": "mute"}
	mute.Spec.Containers[0].Args = []string{"sleep", "3600"}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, mute, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	msvc := svc.DeepCopy()
	msvc.Name, msvc.Spec.Selector, msvc.Spec.Ports[0].Port = "mute", mute.Labels, 8081
	if _, err := cs.CoreV1().Services("default").Create(ctx, msvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "public port 8081", func() bool { return n.Addr(8081) != "" })
	if resp, err := hc.Get("http://" + n.Addr(8081) + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET on a Service whose pod serves nothing: got %d, want no answer", resp.StatusCode)
	}

	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "public port 80 closed after the Service is deleted", func() bool { return n.Addr(80) == "" })
}
