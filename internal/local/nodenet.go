package local

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A node lives in its own network and mount namespace: kubelet, containerd
// and kube-proxy write to fixed host paths (/var/lib/kubelet/device-plugins,
// /var/log/containers, /var/lib/cni) and kube-proxy to a fixed nftables
// table, so two nodes on one host would share them. The namespaces also keep
// one cluster's pods from reaching another's.
//
// Node n (1 ≤ n ≤ maxNodes) has:
//
//	netns and host link  smek-n
//	link                 10.213.n.0/30: host 10.213.n.1, node 10.213.n.2
//	pods                 10.214.n.0/24, routed by the host via the node
//	mount namespace      /run/smek/mnt/smek-n
//	cgroup               /smek-n in every hierarchy
//	nftables             table inet smek-n on the host
//
// The index is claimed machine-wide by creating the network namespace,
// which fails if another process holds it.
const maxNodes = 254

// Host-wide places of the node namespaces.
const (
	runDir   = "/run/smek"
	mntDir   = runDir + "/mnt"
	ownerDir = runDir + "/owner"
	netnsDir = "/run/netns"
)

// nodeNet is one node's share of the host's network.
type nodeNet struct {
	Index int `json:"index"`
}

func (n nodeNet) name() string       { return "smek-" + strconv.Itoa(n.Index) }
func (n nodeNet) hostIP() netip.Addr { return netip.AddrFrom4([4]byte{10, 213, byte(n.Index), 1}) }
func (n nodeNet) nodeIP() netip.Addr { return netip.AddrFrom4([4]byte{10, 213, byte(n.Index), 2}) }
func (n nodeNet) podCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 214, byte(n.Index), 0}), 24)
}
func (n nodeNet) netnsPath() string { return filepath.Join(netnsDir, n.name()) }
func (n nodeNet) mntPath() string   { return filepath.Join(mntDir, n.name()) }
func (n nodeNet) cgroup() string    { return "/" + n.name() }

// run runs a command and returns its output in the error when it fails.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// runIn runs a command in the node's network namespace.
func (n nodeNet) runIn(name string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", n.name(), name}, args...)...)
}

// allocateNodeNet claims the lowest free index for the node whose data is
// in dir, and records dir as its owner.
func allocateNodeNet(dir string) (nodeNet, error) {
	if err := os.MkdirAll(ownerDir, 0o700); err != nil {
		return nodeNet{}, err
	}
	for i := 1; i <= maxNodes; i++ {
		n := nodeNet{Index: i}
		if _, err := os.Stat(n.netnsPath()); err == nil {
			continue
		}
		if err := run("ip", "netns", "add", n.name()); err != nil {
			continue // taken meanwhile by another process
		}
		if err := os.WriteFile(filepath.Join(ownerDir, n.name()), []byte(dir), 0o600); err != nil {
			n.teardown()
			return nodeNet{}, err
		}
		return n, nil
	}
	return nodeNet{}, fmt.Errorf("all %d node networks of this host are in use", maxNodes)
}

// owner returns the data folder recorded for the node.
func (n nodeNet) owner() string {
	b, _ := os.ReadFile(filepath.Join(ownerDir, n.name()))
	return string(b)
}

// setup creates the link, the routes, the host's firewall for the node and
// the node's mount namespace. allowTCP are the ports of the host address
// the node may reach (the API forwarder and the image mirror).
func (n nodeNet) setup(allowTCP []int, dataDir string) error {
	if _, err := os.Stat(n.netnsPath()); err != nil {
		// After a reboot: the namespace went with /run.
		if err := run("ip", "netns", "add", n.name()); err != nil {
			return err
		}
	}
	host, node := n.name(), "eth0"
	hostAddr := netip.PrefixFrom(n.hostIP(), 30).String()
	nodeAddr := netip.PrefixFrom(n.nodeIP(), 30).String()
	if err := exec.Command("ip", "link", "show", host).Run(); err != nil {
		steps := [][]string{
			{"ip", "link", "add", host, "type", "veth", "peer", "name", node, "netns", n.name()},
			{"ip", "addr", "add", hostAddr, "dev", host},
			{"ip", "link", "set", host, "up"},
			{"ip", "-n", n.name(), "addr", "add", nodeAddr, "dev", node},
			{"ip", "-n", n.name(), "link", "set", node, "up"},
			{"ip", "-n", n.name(), "link", "set", "lo", "up"},
			{"ip", "-n", n.name(), "route", "add", "default", "via", n.hostIP().String()},
			{"ip", "route", "replace", n.podCIDR().String(), "via", n.nodeIP().String(), "dev", host},
		}
		for _, s := range steps {
			if err := run(s[0], s[1:]...); err != nil {
				return err
			}
		}
	}
	// Inside the node: forwarding for the pods, and bridged traffic
	// through the node's netfilter, so that Service addresses work between
	// pods on the bridge.
	os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	for _, sysctl := range []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=0"} {
		if err := n.runIn("sysctl", "-qw", sysctl); err != nil {
			return err
		}
	}
	if err := n.firewall(allowTCP); err != nil {
		return err
	}
	return n.mountNamespace(dataDir)
}

// firewall loads the host's rules for the node: it reaches the ports in
// allowTCP on its host address and the world beyond the host, and nothing
// else of the host, its networks or the other nodes.
func (n nodeNet) firewall(allowTCP []int) error {
	ports := make([]string, len(allowTCP))
	for i, p := range allowTCP {
		ports[i] = strconv.Itoa(p)
	}
	rules := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "%[1]s" ct state established,related accept
		iifname "%[1]s" ip daddr %[2]s tcp dport { %[3]s } accept
		iifname "%[1]s" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname "%[1]s" ct state established,related accept
		oifname "%[1]s" drop
		iifname "%[1]s" ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3 } drop
		iifname "%[1]s" meta nfproto ipv6 drop
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		iifname "%[1]s" oifname != "%[1]s" masquerade
	}
}
`, n.name(), n.hostIP(), strings.Join(ports, ", "))
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: load the rules of %s: %w: %s", n.name(), err, bytes.TrimSpace(out))
	}
	return nil
}

// mountNamespace creates the node's persistent mount namespace, in which
// /var/lib and /var/log are folders of dataDir and /run is a tmpfs. Mounts
// made in it (pod volumes, containerd's snapshots) never show on the host,
// and all of them end with it.
func (n nodeNet) mountNamespace(dataDir string) error {
	if isMountPoint(n.mntPath()) {
		return nil
	}
	if err := privateMountDir(); err != nil {
		return err
	}
	for _, d := range []string{"var-lib", "var-log"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(n.mntPath(), os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	if err := run("unshare", "--mount="+n.mntPath(), "--propagation", "private", "true"); err != nil {
		return err
	}
	// Shared inside: kubelet wants mount propagation for its pods.
	script := `set -e
mount --make-rshared /
mount --bind "$1/var-lib" /var/lib
mount --bind "$1/var-log" /var/log
mount -t tmpfs -o mode=0755,size=64m smek-run /run`
	return run("nsenter", "--mount="+n.mntPath(), "--", "sh", "-c", script, "sh", dataDir)
}

// privateMountDir makes mntDir a mount point with private propagation,
// which unshare needs to keep a mount namespace in a file there.
func privateMountDir() error {
	if err := os.MkdirAll(mntDir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(runDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	if isMountPoint(mntDir) {
		return nil
	}
	if err := run("mount", "--bind", mntDir, mntDir); err != nil {
		return err
	}
	return run("mount", "--make-private", mntDir)
}

// isMountPoint reports whether path is a mount point in this process's
// mount namespace.
func isMountPoint(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// teardown removes everything of the node's network and namespaces from
// the host. Processes must have ended: a namespace a process still holds
// lives on until it exits.
func (n nodeNet) teardown() error {
	var errs []error
	if isMountPoint(n.mntPath()) {
		if err := syscall.Unmount(n.mntPath(), syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", n.mntPath(), err))
		}
	}
	os.Remove(n.mntPath())
	if exec.Command("nft", "list", "table", "inet", n.name()).Run() == nil {
		errs = append(errs, run("nft", "delete", "table", "inet", n.name()))
	}
	exec.Command("ip", "route", "del", n.podCIDR().String()).Run()
	if exec.Command("ip", "link", "show", n.name()).Run() == nil {
		errs = append(errs, run("ip", "link", "del", n.name()))
	}
	if _, err := os.Stat(n.netnsPath()); err == nil {
		errs = append(errs, run("ip", "netns", "del", n.name()))
	}
	os.Remove(filepath.Join(ownerDir, n.name()))
	return errors.Join(errs...)
}

// hostNodes lists the node networks present on the host.
func hostNodes() []nodeNet {
	var out []nodeNet
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "smek-")
		if !ok {
			continue
		}
		if i, err := strconv.Atoi(rest); err == nil && i >= 1 && i <= maxNodes {
			out = append(out, nodeNet{Index: i})
		}
	}
	return out
}

// orphanedLongAgo reports whether the node's network namespace has had no
// owner for a minute: allocateNodeNet records the owner right after
// creating it.
func (n nodeNet) orphanedLongAgo() bool {
	fi, err := os.Stat(n.netnsPath())
	return err == nil && time.Since(fi.ModTime()) > time.Minute
}
