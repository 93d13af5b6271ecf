package local

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/smek/action/internal/registrymirror"
)

// nodeBinaries are the Kubernetes binaries a node runs, beside the control
// plane's.
var nodeBinaries = []string{"kubelet", "kube-proxy", "kube-scheduler", "local-path-provisioner", "coredns"}

// hostCommands are the programs from the host's packages a node needs,
// with the Debian package that has each.
var hostCommands = []struct{ path, pkg string }{
	{"/usr/bin/containerd", "containerd"},
	{"/usr/bin/containerd-shim-runc-v2", "containerd"},
	{ctrBinary, "containerd"}, // image load
	{"/usr/sbin/runc", "runc"},
	{"/usr/lib/cni/bridge", "containernetworking-plugins"},
	{"/usr/lib/cni/host-local", "containernetworking-plugins"},
	{"/usr/lib/cni/portmap", "containernetworking-plugins"},
	{"/usr/lib/cni/loopback", "containernetworking-plugins"},
	{"/bin/busybox", "busybox-static"},
	{"/usr/sbin/nft", "nftables"},
	{"/usr/sbin/iptables", "iptables"},
	{"/usr/bin/nsenter", "util-linux"},
	{"/usr/bin/unshare", "util-linux"},
	{"/usr/sbin/ip", "iproute2"},
}

// NodePackages is the command that installs what a node needs on Debian
// and Ubuntu.
const NodePackages = "apt-get install -y containerd runc containernetworking-plugins busybox-static nftables iptables iproute2 util-linux"

// ErrNoNodes means this machine cannot run nodes.
var ErrNoNodes = errors.New("local clusters will have no node that runs pods")

// CheckNodeSupport reports why this machine cannot run a kubelet node per
// cluster, or nil when it can.
func CheckNodeSupport(binDir string) error {
	var why []string
	if os.Geteuid() != 0 {
		why = append(why, "the provisioner does not run as root (a node needs network and mount namespaces, cgroups and nftables)")
	}
	var missing []string
	for _, b := range nodeBinaries {
		if fi, err := os.Stat(filepath.Join(binDir, b)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		why = append(why, fmt.Sprintf("%s not found in %s (make kube-bin builds them)", strings.Join(missing, ", "), binDir))
	}
	var pkgs []string
	for _, c := range hostCommands {
		if _, err := os.Stat(c.path); err != nil && !slices.Contains(pkgs, c.pkg) {
			pkgs = append(pkgs, c.pkg)
		}
	}
	if len(pkgs) > 0 {
		why = append(why, fmt.Sprintf("missing packages %s (install them with: %s)", strings.Join(pkgs, ", "), NodePackages))
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		why = append(why, "no cgroup file system at /sys/fs/cgroup")
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNoNodes, strings.Join(why, "; "))
}

// NodeConfig says how to run a cluster's node.
type NodeConfig struct {
	// Dir is the control plane's folder; the node keeps its data in
	// Dir/node and its credentials in Dir/pki.
	Dir    string
	BinDir string
	// Name is the node's name.
	Name string
	// Labels are given to the node when it registers.
	Labels map[string]string
	// APIPort is kube-apiserver's port on 127.0.0.1, forwarded to the
	// node's host address.
	APIPort int
	// Mirror serves the preloaded images.
	Mirror http.Handler
	// RegistryMirrors are the operator's mirrors, tried after Mirror.
	RegistryMirrors []registrymirror.Mirror
	Logger          *slog.Logger
}

// mirrorPort is the image mirror's port on every node's host address.
const mirrorPort = 5000

// nodeFile records the node's network in the control plane's folder.
const nodeFile = "node.json"

// loadNodeNet reads the node network recorded in dir.
func loadNodeNet(dir string) (nodeNet, bool) {
	var n nodeNet
	b, err := os.ReadFile(filepath.Join(dir, nodeFile))
	if err != nil || json.Unmarshal(b, &n) != nil || n.Index < 1 || n.Index > maxNodes {
		return nodeNet{}, false
	}
	return n, true
}

// nodeNetFor returns the node network of the control plane in dir,
// claiming one on first use.
func nodeNetFor(dir string) (nodeNet, error) {
	if n, ok := loadNodeNet(dir); ok {
		if owner := n.owner(); owner == "" || owner == dir {
			return n, nil
		}
		// After a reboot another node took the index: take a new one.
	}
	n, err := allocateNodeNet(dir)
	if err != nil {
		return n, err
	}
	b, _ := json.Marshal(n)
	if err := os.WriteFile(filepath.Join(dir, nodeFile), b, 0o600); err != nil {
		n.teardown()
		return nodeNet{}, err
	}
	return n, nil
}

// Node is a running kubelet, containerd and kube-proxy in the node's
// namespaces, with the provisioner's forwarders on the host address.
type Node struct {
	cfg       NodeConfig
	net       nodeNet
	procs     []*process
	listeners []net.Listener
	wg        sync.WaitGroup
}

// StartNode prepares the node's network, namespaces and cgroups and starts
// its processes. It returns once they run; the node registers itself with
// kube-apiserver shortly after.
func StartNode(ctx context.Context, cfg NodeConfig, n nodeNet) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	data := filepath.Join(cfg.Dir, "node")
	for _, d := range []string{"logs", "cni", "registries"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := n.setup([]int{cfg.APIPort, mirrorPort}, data); err != nil {
		return nil, fmt.Errorf("node network: %w", err)
	}
	node := &Node{cfg: cfg, net: n}
	if err := node.start(ctx, data); err != nil {
		node.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return node, nil
}

func (node *Node) start(ctx context.Context, data string) error {
	cfg, n := node.cfg, node.net
	pki := filepath.Join(cfg.Dir, "pki")
	if err := node.listen(); err != nil {
		return err
	}
	if err := setupCgroups(n.cgroup()); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	p := func(name string) string { return filepath.Join(pki, name) }
	server := fmt.Sprintf("https://%s", net.JoinHostPort(n.hostIP().String(), strconv.Itoa(cfg.APIPort)))
	files := map[string]string{
		"kubelet.kubeconfig":    kubeconfig(server, p(caCrt), p(kubeletCert+".crt"), p(kubeletCert+".key")),
		"kube-proxy.kubeconfig": kubeconfig(server, p(caCrt), p(kubeProxyCert+".crt"), p(kubeProxyCert+".key")),
		"kubelet.yaml":          node.kubeletConfig(pki),
		"kube-proxy.yaml":       node.kubeProxyConfig(data),
		"containerd.toml":       node.containerdConfig(data),
		"cni/10-smek.conflist":  node.cniConfig(),
	}
	for dir, body := range node.registryDirs() {
		files[filepath.Join("registries", dir, "hosts.toml")] = body
	}
	for name, body := range files {
		path := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return err
		}
	}
	wrapper := []string{"nsenter", "--net=" + n.netnsPath(), "--mount=" + n.mntPath(), "--"}
	labels := make([]string, 0, len(cfg.Labels))
	for k, v := range cfg.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	starts := []struct {
		bin  string
		args []string
	}{
		{"/usr/bin/containerd", []string{"--config=" + filepath.Join(data, "containerd.toml")}},
		{filepath.Join(cfg.BinDir, "kubelet"), []string{
			"--config=" + filepath.Join(data, "kubelet.yaml"),
			"--kubeconfig=" + filepath.Join(data, "kubelet.kubeconfig"),
			"--hostname-override=" + cfg.Name,
			"--node-ip=" + n.nodeIP().String(),
			"--node-labels=" + strings.Join(labels, ","),
		}},
		{filepath.Join(cfg.BinDir, "kube-proxy"), []string{"--config=" + filepath.Join(data, "kube-proxy.yaml")}},
	}
	for i, s := range starts {
		proc, err := startWrapped(wrapper, s.bin, s.args, filepath.Join(data, "logs", filepath.Base(s.bin)+".log"))
		if err != nil {
			return err
		}
		node.procs = append(node.procs, proc)
		if i == 0 {
			// kubelet gives up at once when the runtime does not answer.
			if err := waitSocket(ctx, proc, "/run/containerd/containerd.sock"); err != nil {
				return err
			}
		}
	}
	return node.writePIDs()
}

// waitSocket waits until the process listens on the unix socket at path
// in its mount namespace, or has exited. It dials: after a stop the
// socket file of the previous run is still there.
func waitSocket(ctx context.Context, p *process, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	inNS := fmt.Sprintf("/proc/%d/root%s", p.cmd.Process.Pid, path)
	for {
		if c, err := net.Dial("unix", inNS); err == nil {
			c.Close()
			return nil
		}
		if err := p.exited(); err != nil {
			return fmt.Errorf("%s exited while starting: %w; last log lines:\n%s", p.name, err, p.tail(15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no socket %s: %w; last log lines:\n%s", p.name, path, ctx.Err(), p.tail(15))
		case <-tick.C:
		}
	}
}

// watch cancels ctx with the cause when one of the node's processes exits,
// until ctx ends: a wait for the node then ends at once, with the reason.
func (node *Node) watch(ctx context.Context, cancel context.CancelCauseFunc) {
	for _, p := range node.procs {
		go func() {
			select {
			case <-p.done:
				cancel(fmt.Errorf("%s exited: %v; last log lines:\n%s", p.name, p.exited(), p.tail(15)))
			case <-ctx.Done():
			}
		}()
	}
}

// listen opens the forwarder to kube-apiserver and the image mirror on the
// node's host address.
func (node *Node) listen() error {
	host := node.net.hostIP().String()
	api, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(node.cfg.APIPort)))
	if err != nil {
		return fmt.Errorf("forward kube-apiserver to the node: %w", err)
	}
	node.listeners = append(node.listeners, api)
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(node.cfg.APIPort))
	node.wg.Go(func() { forward(api, target) })
	reg, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(mirrorPort)))
	if err != nil {
		return fmt.Errorf("serve the image mirror to the node: %w", err)
	}
	node.listeners = append(node.listeners, reg)
	srv := &http.Server{Handler: node.cfg.Mirror, ReadHeaderTimeout: 10 * time.Second}
	node.wg.Go(func() { srv.Serve(reg) })
	return nil
}

// forward copies every connection accepted on l to target and back.
func forward(l net.Listener, target string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Go(func() {
			defer c.Close()
			d, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				return
			}
			defer d.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(d, c)
				d.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, d)
			c.(*net.TCPConn).CloseWrite()
			<-done
		})
	}
}

// tail returns the last n lines of a node process's log.
func (node *Node) tail(name string, n int) string {
	for _, p := range node.procs {
		if p.name == name {
			return p.tail(n)
		}
	}
	return ""
}

// nodePIDFile records the node's processes, as pidFile the control plane's.
const nodePIDFile = "node-pids"

func (node *Node) writePIDs() error {
	var b strings.Builder
	for _, p := range node.procs {
		fmt.Fprintf(&b, "%d\n", p.cmd.Process.Pid)
	}
	return os.WriteFile(filepath.Join(node.cfg.Dir, nodePIDFile), []byte(b.String()), 0o600)
}

// Stop ends the node's processes, its containers with them, and closes the
// forwarders. The node's data, namespaces and network stay for a start.
func (node *Node) Stop(ctx context.Context) error {
	for _, l := range node.listeners {
		l.Close()
	}
	node.listeners = nil
	var errs []error
	for i := len(node.procs) - 1; i >= 0; i-- {
		errs = append(errs, node.procs[i].stop(ctx, 0))
	}
	node.procs = nil
	errs = append(errs, killNode(node.net))
	node.wg.Wait()
	os.Remove(filepath.Join(node.cfg.Dir, nodePIDFile))
	return errors.Join(errs...)
}

// killNode kills every process of the node: those in its network namespace
// (containerd's shims among them) and those in its cgroups (the
// containers), until none is left.
func killNode(n nodeNet) error {
	for range 50 {
		pids := nodePIDs(n)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond) // the kernel reaps them asynchronously
	}
	return fmt.Errorf("processes of %s outlive SIGKILL: %v", n.name(), nodePIDs(n))
}

// nodePIDs lists the processes in the node's network namespace or cgroups.
func nodePIDs(n nodeNet) []int {
	seen := map[int]bool{}
	if out, err := exec.Command("ip", "netns", "pids", n.name()).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				seen[pid] = true
			}
		}
	}
	for _, root := range cgroupRoots() {
		filepath.WalkDir(filepath.Join(root, n.cgroup()), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	out := make([]int, 0, len(seen))
	for pid := range seen {
		out = append(out, pid)
	}
	return out
}

// DestroyNode kills what runs of the node, removes its cgroups and takes
// its network and namespaces off the host.
func destroyNode(n nodeNet) error {
	return errors.Join(killNode(n), removeCgroups(n.cgroup()), n.teardown())
}

// cgroupRoots are the cgroup hierarchies of the host: the unified one on
// cgroup v2, one per controller on v1.
func cgroupRoots() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		root := filepath.Join("/sys/fs/cgroup", e.Name())
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err == nil {
			out = append(out, root)
		}
	}
	return out
}

// setupCgroups creates the node's cgroup, the kubelet's cgroupRoot, in
// every hierarchy. On cgroup v1 a new cpuset has no CPUs and memory nodes
// until given its parent's; on v2 the controllers must be enabled for the
// root's children.
func setupCgroups(cg string) error {
	roots := cgroupRoots()
	if len(roots) == 1 && roots[0] == "/sys/fs/cgroup" {
		ctrls, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		if err != nil {
			return err
		}
		var enable []string
		for _, c := range strings.Fields(string(ctrls)) {
			enable = append(enable, "+"+c)
		}
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(enable, " ")), 0o644); err != nil {
			return fmt.Errorf("enable cgroup controllers %v: %w", enable, err)
		}
		return os.MkdirAll(filepath.Join(roots[0], cg), 0o755)
	}
	for _, root := range roots {
		dir := filepath.Join(root, cg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), bytes.TrimSpace(b), 0o644); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
				}
			}
		}
	}
	return nil
}

// removeCgroups removes the node's cgroups, deepest first. Their processes
// must have been killed.
func removeCgroups(cg string) error {
	var errs []error
	for _, root := range cgroupRoots() {
		var dirs []string
		filepath.WalkDir(filepath.Join(root, cg), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// kubeconfig is a client configuration for a component of the cluster.
// kube-apiserver's certificate names "kubernetes", whichever address the
// client dials (the node dials its forwarder's).
func kubeconfig(server, ca, cert, key string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority: %s
    tls-server-name: kubernetes
users:
- name: local
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: local
  context: {cluster: local, user: local}
current-context: local
`, server, ca, cert, key)
}

// clusterDNS is the Service address of the cluster's DNS.
const clusterDNS = "10.0.0.10"

//go:embed coredns.yaml
var corednsYAML string

// corednsManifest is the cluster DNS of a node.
func corednsManifest() string {
	return strings.NewReplacer("%{COREDNS_IMAGE}%", CoreDNSImage, "%{CLUSTER_DNS}%", clusterDNS).Replace(corednsYAML)
}

func (node *Node) kubeletConfig(pki string) string {
	p := func(name string) string { return filepath.Join(pki, name) }
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[2]s}
authorization: {mode: Webhook}
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: %[5]s
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [%[6]s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
maxPods: 110
`, node.net.nodeIP(), p(caCrt), p(kubeletServing+".crt"), p(kubeletServing+".key"), node.net.cgroup(), clusterDNS)
}

func (node *Node) kubeProxyConfig(data string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
clusterCIDR: %s
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
masqueradeAll: true
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, filepath.Join(data, "kube-proxy.kubeconfig"), node.cfg.Name, node.net.podCIDR())
}

func (node *Node) containerdConfig(data string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[1]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = %[4]q
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[2]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[3]q
`, PauseImage, filepath.Join(data, "cni"), filepath.Join(data, "registries"), nodeSnapshotter)
}

// mirrorHosts tells containerd to pull reg's images from the backend's
// mirror first (when SMEK mirrors reg), then from the operator's mirrors
// in order, then from reg itself.
func (node *Node) mirrorHosts(reg string, own bool) string {
	var hosts []string
	if own {
		hosts = append(hosts, "http://"+net.JoinHostPort(node.net.hostIP().String(), strconv.Itoa(mirrorPort)))
	}
	return containerdHosts(reg, hosts, registrymirror.For(node.cfg.RegistryMirrors, reg))
}

// containerdHosts is containerd's hosts.toml for reg: the hosts in order
// (SMEK's mirror, whose path is the API's root), then the operator's
// mirrors, then the server, reg itself. The wildcard registry
// (certs.d/_default) has no server: each registry is its own.
func containerdHosts(reg string, own, mirrors []string) string {
	var b strings.Builder
	switch reg {
	case registrymirror.Wildcard:
	case "docker.io":
		fmt.Fprintf(&b, "server = %q\n", "https://registry-1.docker.io")
	default:
		fmt.Fprintf(&b, "server = %q\n", "https://"+reg)
	}
	for _, h := range own {
		fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", h)
	}
	for _, m := range mirrors {
		h, override := registrymirror.ContainerdHost(m)
		fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", h)
		if override {
			b.WriteString("  override_path = true\n")
		}
	}
	return b.String()
}

// registryDirs are the registries a node's containerd gets a hosts.toml
// for: SMEK's own mirrored ones (true) and the operator's, by folder
// name (the wildcard is _default).
func (node *Node) registryDirs() map[string]string {
	dirs := map[string]string{}
	for _, reg := range mirroredRegistries {
		dirs[reg] = node.mirrorHosts(reg, true)
	}
	regs, _ := registrymirror.Registries(node.cfg.RegistryMirrors)
	for _, reg := range regs {
		if _, ok := dirs[reg]; ok {
			continue
		}
		dir := reg
		if reg == registrymirror.Wildcard {
			dir = "_default"
		}
		dirs[dir] = node.mirrorHosts(reg, false)
	}
	return dirs
}

func (node *Node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "smek",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, node.net.podCIDR())
}
