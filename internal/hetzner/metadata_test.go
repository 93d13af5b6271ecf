package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// needNetfilter skips the test unless it can build network namespaces
// and load netfilter rules: root, with ip, nft and iptables. With
// SMEK_REQUIRE_NETFILTER=1 (.ci/run sets it, .ci/netfilter-deps.sh
// installs them) a missing piece fails the test instead.
func needNetfilter(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root: network namespaces need it"
	}
	for _, tool := range []string{"ip", "nft", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = tool + " is not installed (.ci/netfilter-deps.sh installs it)"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("SMEK_REQUIRE_NETFILTER") == "1" {
		t.Fatalf("SMEK_REQUIRE_NETFILTER=1, but %s", why)
	}
	t.Skip(why)
}

// builtImage runs the image build against the fake with simulated
// machines (k3s is never started) and returns the folder that holds the
// golden snapshot's disk.
func builtImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	fake := hcloudfake.New(hcloudfake.Config{DefaultDuration: 5 * time.Millisecond, Machines: k3snode.Factory(k3snode.Config{Dir: dir}), DataDir: dir}).Start()
	t.Cleanup(fake.Close)
	client := hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	b, err := New(Config{
		Client: client, Installation: "test", SSHKeyName: "smek", Signer: signer, CredentialKey: key,
		Firewall: "smek-nodes", SourceCIDRs: []string{"127.0.0.1/32"}, SSHAddr: FakeSSHAddr(fake.URL, nil),
		ExpectCreate: 10 * time.Millisecond, ExpectRebuild: 10 * time.Millisecond, ExpectPower: 10 * time.Millisecond,
		PollMin: time.Millisecond, PollMax: 20 * time.Millisecond, RetryBase: time.Millisecond, ReadyTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := b.BuildImage(context.Background(), ImageConfig{K3sVersion: "v1.36.3+k3s1"})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	return filepath.Join(dir, "images", fmt.Sprint(img.ID))
}

// netns runs f on a thread inside the named network namespace; sockets
// made there stay in it.
func netns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with the goroutine
		// instead of going back to the scheduler in another namespace.
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// TestMetadataBlockHoldsAgainstNetworkPolicyAccepts loads the metadata
// block the golden image installs into a "node" network namespace that
// routes for a "pod" namespace, then inserts an iptables FORWARD ACCEPT
// at the top, as kube-router does for traffic of pods a NetworkPolicy
// selects. A connection from the pod to 169.254.169.254 must still be
// dropped; one to another address forwarded through the same node must
// pass.
func TestMetadataBlockHoldsAgainstNetworkPolicyAccepts(t *testing.T) {
	needNetfilter(t)
	disk := builtImage(t)
	unit, err := os.ReadFile(filepath.Join(disk, "etc/systemd/system/smek-metadata-block.service"))
	if err != nil {
		t.Fatalf("the image has no metadata block unit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(disk, "etc/systemd/system/multi-user.target.wants/smek-metadata-block.service")); err != nil {
		t.Errorf("the metadata block unit is not enabled: %v", err)
	}

	suffix := strings.ToLower(rand.Text()[:6])
	pod, node, up := "smek-pod-"+suffix, "smek-node-"+suffix, "smek-up-"+suffix
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{pod, node, up} {
		sh("ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	// pod (192.0.2.2) ── node (192.0.2.1 | 198.51.100.1) ── upstream
	// (198.51.100.2, and the metadata address 169.254.169.254).
	sh("ip", "link", "add", "p0-"+suffix, "netns", pod, "type", "veth", "peer", "name", "n0-"+suffix, "netns", node)
	sh("ip", "link", "add", "n1-"+suffix, "netns", node, "type", "veth", "peer", "name", "u0-"+suffix, "netns", up)
	in := func(ns string, args ...string) {
		t.Helper()
		sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
	}
	in(pod, "ip", "addr", "add", "192.0.2.2/24", "dev", "p0-"+suffix)
	in(pod, "ip", "link", "set", "p0-"+suffix, "up")
	in(pod, "ip", "route", "add", "default", "via", "192.0.2.1")
	in(node, "ip", "addr", "add", "192.0.2.1/24", "dev", "n0-"+suffix)
	in(node, "ip", "addr", "add", "198.51.100.1/24", "dev", "n1-"+suffix)
	in(node, "ip", "link", "set", "n0-"+suffix, "up")
	in(node, "ip", "link", "set", "n1-"+suffix, "up")
	in(node, "ip", "route", "add", "169.254.169.254/32", "via", "198.51.100.2")
	in(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	in(up, "ip", "addr", "add", "198.51.100.2/24", "dev", "u0-"+suffix)
	in(up, "ip", "addr", "add", "169.254.169.254/32", "dev", "u0-"+suffix)
	in(up, "ip", "link", "set", "u0-"+suffix, "up")
	in(up, "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.1")

	var l net.Listener
	if err := netns(up, func() error {
		var err error
		l, err = net.Listen("tcp", "0.0.0.0:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reach := func(addr string) error {
		return netns(pod, func() error {
			c, err := net.DialTimeout("tcp", addr+":8080", 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := reach("169.254.169.254"); err != nil {
		t.Fatalf("before the block, the pod cannot reach the metadata address at all (the test's network is wrong): %v", err)
	}

	// What the unit runs at boot, with the image's files.
	for _, line := range strings.Split(string(unit), "\n") {
		cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart=")
		if !ok {
			continue
		}
		args := strings.Fields(cmd)
		if strings.HasSuffix(args[0], "ip6tables") {
			continue // the test network has no IPv6 route to the metadata service
		}
		for i, a := range args[1:] {
			if strings.HasPrefix(a, "/") {
				if _, err := os.Stat(filepath.Join(disk, a)); err == nil {
					args[i+1] = filepath.Join(disk, a)
				}
			}
		}
		args[0] = filepath.Base(args[0])
		in(node, args...)
	}
	// kube-router: traffic of pods that a NetworkPolicy selects is
	// accepted in FORWARD, ahead of rules inserted earlier.
	in(node, "iptables", "-I", "FORWARD", "1", "-j", "ACCEPT")

	if err := reach("169.254.169.254"); err == nil {
		t.Errorf("a pod reached 169.254.169.254 through the node despite the metadata block")
	}
	if err := reach("198.51.100.2"); err != nil {
		t.Errorf("other forwarded traffic is blocked too: %v", err)
	}
}
