package local

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// nodeCluster is a provisioned member with a node, and kubectl for it.
type nodeCluster struct {
	t          *testing.T
	b          *Backend
	m          cluster.Member
	kubeconfig string
}

func provisionNode(t *testing.T, b *Backend, id string) *nodeCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := cluster.Member{ID: id, Flavor: cluster.Flavor{K8sVersion: Version, Size: cluster.SizeMid}}
	t.Cleanup(func() {
		if err := b.Destroy(context.Background(), m); err != nil {
			t.Error(err)
		}
	})
	if _, err := b.Provision(ctx, m); err != nil {
		t.Fatal(err)
	}
	dir := b.dir(m)
	pki := func(name string) string { return filepath.Join(dir, "pki", name) }
	c := &nodeCluster{t: t, b: b, m: m, kubeconfig: filepath.Join(t.TempDir(), "admin.kubeconfig")}
	mem, err := b.member(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeClientKubeconfig(c.kubeconfig, mem.cp.URL(), pki(caCrt), pki(adminCert+".crt"), pki(adminCert+".key")); err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl runs kubectl against the cluster and returns its output.
func (c *nodeCluster) kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.b.cfg.BinDir, "kubectl"), append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// must runs kubectl and fails the test when it fails.
func (c *nodeCluster) must(args ...string) string {
	c.t.Helper()
	out, err := c.kubectl(args...)
	if err != nil {
		c.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// apply creates the objects of a YAML document.
func (c *nodeCluster) apply(doc string) {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "doc.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.must("apply", "-f", path)
}

const webApp = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "mkdir /www && echo hello from the node > /www/index.html && echo web started && exec httpd -f -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: busybox
    command: ["sleep", "3600"]
`

func TestNodeRunsWorkloads(t *testing.T) {
	b := nodeBackend(t)
	c := provisionNode(t, b, "s-workload")
	c.apply(webApp)
	c.must("wait", "--for=condition=Available", "deployment/web", "--timeout=120s")
	c.must("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")

	t.Run("logs", func(t *testing.T) {
		if out := c.must("logs", "deployment/web"); !strings.Contains(out, "web started") {
			t.Fatalf("kubectl logs: %q, want the line the container printed", out)
		}
	})
	t.Run("exec", func(t *testing.T) {
		if out := c.must("exec", "deployment/web", "--", "cat", "/www/index.html"); out != "hello from the node" {
			t.Fatalf("kubectl exec: %q", out)
		}
	})
	t.Run("service", func(t *testing.T) {
		ip := c.must("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
		if out := c.must("exec", "client", "--", "timeout", "10", "wget", "-q", "-O-", "http://"+ip+"/"); out != "hello from the node" {
			t.Fatalf("GET the Service from another pod: %q", out)
		}
	})
	t.Run("dns", func(t *testing.T) {
		// CoreDNS answers for the Service's name, from another pod, and
		// the name reaches the Service.
		ip := c.must("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
		out := c.must("exec", "client", "--", "nslookup", "web.default.svc.cluster.local")
		if !strings.Contains(out, "Address: "+ip) {
			t.Fatalf("nslookup web.default.svc.cluster.local: %q, want %s", out, ip)
		}
		if out := c.must("exec", "client", "--", "timeout", "10", "wget", "-q", "-O-", "http://web/"); out != "hello from the node" {
			t.Fatalf("GET http://web/ from another pod: %q", out)
		}
	})
	t.Run("kubernetes service", func(t *testing.T) {
		// Pods reach kube-apiserver at the kubernetes Service, as their
		// in-cluster clients do. busybox's TLS offers none of the
		// ciphers kube-apiserver takes with its ECDSA key: that it
		// answers the handshake at all shows the way is open.
		out, _ := c.kubectl("exec", "client", "--", "timeout", "10", "wget", "-q", "-O-", "--no-check-certificate", "https://10.0.0.1/readyz")
		if !strings.Contains(out, "TLS error from peer (alert code 40)") {
			t.Fatalf("GET https://10.0.0.1/readyz from a pod: %q, want kube-apiserver's TLS alert", out)
		}
	})
	t.Run("loadbalancer", func(t *testing.T) {
		// ServiceLB's part: a LoadBalancer on 80 answers on the node's
		// address, from the host.
		c.must("expose", "deployment/web", "--name=web-lb", "--type=LoadBalancer", "--port=80", "--target-port=8080")
		n, _ := loadNodeNet(b.dir(c.m))
		c.must("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}="+n.nodeIP().String(), "service/web-lb", "--timeout=60s")
		// kube-proxy programs the address a moment after the status is
		// set, as a cloud load balancer takes a moment to answer.
		client := &http.Client{Timeout: 5 * time.Second}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get("http://" + n.nodeIP().String() + "/")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := strings.TrimSpace(string(body)); got != "hello from the node" {
					t.Fatalf("GET http://%s/ from the host: %q", n.nodeIP(), got)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the LoadBalancer does not answer on the node's address: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		portForward(t, c, "deployment/web", "8080", "hello from the node")
	})
}

// portForward runs kubectl port-forward to target's port and checks that
// a GET through it answers want.
func portForward(t *testing.T, c *nodeCluster, target, port, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(c.b.cfg.BinDir, "kubectl"), "--kubeconfig="+c.kubeconfig,
		"port-forward", target, ":"+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	// "Forwarding from 127.0.0.1:NNNNN -> 8080"
	var line []byte
	buf := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\n")) {
		if _, err := stdout.Read(buf); err != nil {
			t.Fatalf("port-forward ended: %v (%q)", err, line)
		}
		line = append(line, buf[0])
	}
	var local string
	if _, err := fmt.Sscanf(string(line), "Forwarding from %s ->", &local); err != nil {
		t.Fatalf("port-forward said %q", line)
	}
	go io.Copy(io.Discard, stdout)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://" + local + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(body)); got != want {
		t.Fatalf("GET through port-forward: %q, want %q", got, want)
	}
}

// TestNodesAreIsolated proves that a tenant's pod reaches neither the
// host's services (on any of its addresses) nor another cluster: its
// pods, its node or its kube-apiserver.
func TestNodesAreIsolated(t *testing.T) {
	b := nodeBackend(t)
	a := provisionNode(t, b, "s-tenant-a")
	other := provisionNode(t, b, "s-tenant-b")
	for _, c := range []*nodeCluster{a, other} {
		c.apply(webApp)
	}
	for _, c := range []*nodeCluster{a, other} {
		c.must("wait", "--for=condition=Available", "deployment/web", "--timeout=120s")
		c.must("wait", "--for=condition=Ready", "pod/client", "--timeout=120s")
	}
	// A service of the host, on every address.
	host, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "host secret") })}
	go srv.Serve(host)
	defer srv.Close()
	hostPort := fmt.Sprint(host.Addr().(*net.TCPAddr).Port)

	na, _ := loadNodeNet(b.dir(a.m))
	nb, _ := loadNodeNet(b.dir(other.m))
	otherPod := other.must("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}")
	mb, _ := b.member(other.m)
	targets := map[string]string{
		"the host on the node's link":       "http://" + net.JoinHostPort(na.hostIP().String(), hostPort) + "/",
		"the host on the other node's link": "http://" + net.JoinHostPort(nb.hostIP().String(), hostPort) + "/",
		"the other cluster's pod":           "http://" + net.JoinHostPort(otherPod, "8080") + "/",
		"the other cluster's node":          "http://" + net.JoinHostPort(nb.nodeIP().String(), "10250") + "/",
		"the other cluster's API":           "https://" + net.JoinHostPort(nb.hostIP().String(), fmt.Sprint(mb.cp.Ports().APIServer)) + "/readyz",
	}
	for _, ip := range hostAddresses(t) {
		targets["the host at "+ip] = "http://" + net.JoinHostPort(ip, hostPort) + "/"
	}
	// The probe itself works: the same wget reaches the tenant's own pod.
	ownPod := a.must("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}")
	if out := a.must("exec", "client", "--", "timeout", "5", "wget", "-q", "-O-", "http://"+net.JoinHostPort(ownPod, "8080")+"/"); out != "hello from the node" {
		t.Fatalf("own pod: %q", out)
	}
	for name, url := range targets {
		t.Run(name, func(t *testing.T) {
			out, err := a.kubectl("exec", "client", "--", "timeout", "3", "wget", "-q", "-O-", "--no-check-certificate", url)
			if reached(out, err) {
				t.Fatalf("a pod of cluster A reached %s (%s): %q", name, url, out)
			}
		})
	}
}

// reached reports whether a pod's wget got an answer: a body, an HTTP
// error, or a TLS alert (busybox's TLS and kube-apiserver's or the
// kubelet's ECDSA keys have no cipher in common, so a TLS server answers
// with one).
func reached(out string, err error) bool {
	return err == nil || strings.Contains(out, "TLS error from peer") || strings.Contains(out, "server returned error")
}

// hostAddresses are this host's IPv4 addresses outside loopback and the
// nodes' links.
func hostAddresses(t *testing.T) []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		ip := a.(*net.IPNet).IP.To4()
		if ip == nil || ip.IsLoopback() || (ip[0] == 10 && ip[1] == 213) {
			continue
		}
		out = append(out, ip.String())
	}
	return out
}

// traces lists what of node n and the data folder dir is on the host:
// its network namespace, link, routes, nftables table, cgroups, mount
// namespace, owner record, processes and mounts.
func traces(t *testing.T, n nodeNet, dir string) []string {
	t.Helper()
	var out []string
	if _, err := os.Stat(n.netnsPath()); err == nil {
		out = append(out, "netns "+n.name())
	}
	if exec.Command("ip", "link", "show", n.name()).Run() == nil {
		out = append(out, "link "+n.name())
	}
	if b, _ := exec.Command("ip", "route", "show", n.podCIDR().String()).Output(); len(bytes.TrimSpace(b)) > 0 {
		out = append(out, "route "+n.podCIDR().String())
	}
	if exec.Command("nft", "list", "table", "inet", n.name()).Run() == nil {
		out = append(out, "nft table "+n.name())
	}
	for _, root := range cgroupRoots() {
		if _, err := os.Stat(filepath.Join(root, n.cgroup())); err == nil {
			out = append(out, "cgroup "+filepath.Join(root, n.cgroup()))
		}
	}
	for _, f := range []string{n.mntPath(), filepath.Join(ownerDir, n.name())} {
		if _, err := os.Stat(f); err == nil {
			out = append(out, "file "+f)
		}
	}
	if pids := nodePIDs(n); len(pids) > 0 {
		out = append(out, fmt.Sprintf("processes %v", pids))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, "process "+p)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, n.mntPath()) {
			out = append(out, "mount "+line)
		}
	}
	return out
}

const volumePod = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  containers:
  - name: writer
    image: busybox
    command: ["sh", "-c", "if [ -f /data/file ]; then echo again >> /data/file; else echo first > /data/file; fi; echo x > /scratch/x; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}, {name: scratch, mountPath: /scratch}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
  - name: scratch
    emptyDir: {medium: Memory}
`

// TestNodeReleaseLeavesNoTrace: destroying a cluster whose node ran pods
// (with a tmpfs volume) takes everything of the node off the host.
func TestNodeReleaseLeavesNoTrace(t *testing.T) {
	b := nodeBackend(t)
	c := provisionNode(t, b, "s-trace")
	c.apply(volumePod)
	c.must("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")
	n, ok := loadNodeNet(b.dir(c.m))
	if !ok {
		t.Fatal("no node network recorded")
	}
	dir := b.dir(c.m)
	before := traces(t, n, dir)
	// The check sees a running node, or its silence after the release
	// would prove nothing.
	for _, want := range []string{"netns ", "link ", "route ", "nft table ", "cgroup ", "file " + n.mntPath(), "processes "} {
		if !slices.ContainsFunc(before, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Fatalf("a running node shows no %q: %v", want, before)
		}
	}
	if err := b.Destroy(context.Background(), c.m); err != nil {
		t.Fatal(err)
	}
	if after := traces(t, n, dir); len(after) > 0 {
		t.Fatalf("left on the host after the release:\n%s", strings.Join(after, "\n"))
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the cluster's folder is still there: %v", err)
	}
}

// TestNodeCrashIsCleanedAtStart: when the provisioner dies, the kernel
// ends its children (containerd, kubelet, kube-proxy), but the pods and
// containerd's shims live on, with the node's namespaces and cgroups. The
// reconciler at the next start removes all of it.
func TestNodeCrashIsCleanedAtStart(t *testing.T) {
	b := nodeBackend(t)
	c := provisionNode(t, b, "s-crash")
	c.apply(volumePod)
	c.must("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")
	n, _ := loadNodeNet(b.dir(c.m))
	dir := b.dir(c.m)
	// The crash: every direct child dies as by Pdeathsig; nothing is
	// cleaned up.
	b.mu.Lock()
	mem := b.running[c.m.ID]
	delete(b.running, c.m.ID)
	b.mu.Unlock()
	mem.stopGrants()
	for _, p := range append(mem.node.procs, mem.cp.procs...) {
		p.cmd.Process.Kill()
		<-p.done
	}
	for _, l := range mem.node.listeners {
		l.Close()
	}
	if len(nodePIDs(n)) == 0 {
		t.Fatal("no pod or shim outlived the crash: the test shows nothing")
	}
	// The next start: a new backend on the same folder, which the
	// database says holds no member.
	b2, err := New(Config{Dir: b.cfg.Dir, BinDir: b.cfg.BinDir, Nodes: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Reconcile(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if after := traces(t, n, dir); len(after) > 0 {
		t.Fatalf("left on the host after the reconciler ran:\n%s", strings.Join(after, "\n"))
	}
}

// TestNodeStopStart: a claim of the default StorageClass (k3s's
// local-path, provisioned on the node) binds for its consumer; a stopped
// cluster runs nothing; started again, its node comes back Ready and runs
// its pods again, with their volumes.
func TestNodeStopStart(t *testing.T) {
	b := nodeBackend(t)
	c := provisionNode(t, b, "s-stopstart")
	c.apply(volumePod)
	c.must("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")
	if phase := c.must("get", "pvc", "data", "-o", "jsonpath={.status.phase}"); phase != "Bound" {
		t.Fatalf("claim %s, want Bound", phase)
	}
	if sc := c.must("get", "pvc", "data", "-o", "jsonpath={.spec.storageClassName}"); sc != "local-path" {
		t.Fatalf("claim of class %q, want the default local-path", sc)
	}
	n, _ := loadNodeNet(b.dir(c.m))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := b.Stop(ctx, c.m); err != nil {
		t.Fatal(err)
	}
	if pids := nodePIDs(n); len(pids) > 0 {
		t.Fatalf("processes of the stopped node: %v", pids)
	}
	if _, err := b.Start(ctx, c.m); err != nil {
		t.Fatal(err)
	}
	c.must("wait", "--for=condition=Ready", "node/"+nodeName, "--timeout=120s")
	// The container runs again once its start appended to the file.
	var out string
	for ctx.Err() == nil {
		if out, _ = c.kubectl("exec", "writer", "--", "cat", "/data/file"); out == "first\nagain" {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	status, _ := c.kubectl("get", "pod", "writer", "-o", "jsonpath={.status}")
	for _, name := range []string{"kubelet", "containerd"} {
		log, _ := os.ReadFile(filepath.Join(b.dir(c.m), "node", "logs", name+".log"))
		lines := strings.Split(string(log), "\n")
		t.Logf("%s log:\n%s", name, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	t.Fatalf("after a start the pod's volume holds %q, want the first start's line and the second's; pod status %s", out, status)
}
