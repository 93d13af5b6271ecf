package k3snode

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/fake/hcloudfake"
)

// hostKeyOf connects to n and returns the host key it presents.
func hostKeyOf(t *testing.T, n *Node, key ssh.Signer) string {
	t.Helper()
	var got ssh.PublicKey
	c, err := ssh.Dial("tcp", n.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { got = k; return nil }, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(got)))
}

// hostKeyUserData is the #cloud-config SMEK passes: an ed25519 host key.
func hostKeyUserData(t *testing.T) (userData, public string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	var b strings.Builder
	b.WriteString("#cloud-config\nssh_keys:\n  ed25519_private: |\n")
	for _, l := range strings.Split(strings.TrimSpace(string(pem.EncodeToMemory(block))), "\n") {
		b.WriteString("    " + l + "\n")
	}
	b.WriteString("  ed25519_public: " + public + "\n")
	return b.String(), public
}

func run(t *testing.T, n *Node, line string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := n.run(line, strings.NewReader(""), &out, &errOut)
	return out.String() + errOut.String(), code
}

// TestCloudInitHostKey: the host key comes from the user data's ssh_keys
// (else it is made at the first boot); a system from a snapshot answers
// the first HostKeyLag connections with the key the snapshot carries;
// the key stays across power cycles; a rebuild with new user data brings
// its key.
func TestCloudInitHostKey(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	auth := []string{string(ssh.MarshalAuthorizedKey(key.PublicKey()))}
	// A snapshot of a booted system: it carries that system's host key.
	src, err := NewNode(Config{Dir: dir}, hcloudfake.MachineSpec{ServerID: 1, Name: "src", AuthorizedKeys: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.PowerOn(); err != nil {
		t.Fatal(err)
	}
	old := hostKeyOf(t, src, key)
	if out, code := run(t, src, "cloud-init clean --logs"); code != 0 {
		t.Fatalf("cloud-init clean: %d %s", code, out)
	}
	if err := src.PowerOff(); err != nil {
		t.Fatal(err)
	}
	image := t.TempDir()
	if err := src.Snapshot(image); err != nil {
		t.Fatal(err)
	}
	src.Destroy()

	userData, want := hostKeyUserData(t)
	n, err := NewNode(Config{Dir: dir}, hcloudfake.MachineSpec{ServerID: 2, Name: "n", ImageDir: image, AuthorizedKeys: auth, UserData: userData, HostKeyLag: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got := hostKeyOf(t, n, key); got != old {
			t.Errorf("connection %d before cloud-init: key %s, want the snapshot's %s", i+1, got, old)
		}
	}
	if got := hostKeyOf(t, n, key); got != want {
		t.Errorf("after cloud-init: key %s, want the user data's %s", got, want)
	}
	if err := n.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if got := hostKeyOf(t, n, key); got != want {
		t.Errorf("after a power cycle: key %s, want %s", got, want)
	}
	again, want2 := hostKeyUserData(t)
	if err := n.Reimage(hcloudfake.Disk{ImageDir: image, UserData: again}); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	hostKeyOf(t, n, key)
	hostKeyOf(t, n, key)
	if got := hostKeyOf(t, n, key); got != want2 {
		t.Errorf("after a rebuild with new user data: key %s, want %s", got, want2)
	}
	// Without user data, cloud-init makes a key of its own.
	if err := n.Reimage(hcloudfake.Disk{ImageDir: image}); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	hostKeyOf(t, n, key)
	hostKeyOf(t, n, key)
	if got := hostKeyOf(t, n, key); got == old || got == want || got == want2 {
		t.Errorf("without user data: key %s is not a fresh one", got)
	}
}

// TestMachineID: systemd makes a machine id on a boot that finds none;
// servers from one snapshot share the snapshot's id unless it was cleaned
// with `cloud-init clean --machine-id`.
func TestMachineID(t *testing.T) {
	dir := t.TempDir()
	boot := func(id int64, image string) *Node {
		t.Helper()
		n, err := NewNode(Config{Dir: dir}, hcloudfake.MachineSpec{ServerID: id, Name: "n", ImageDir: image})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.PowerOn(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Destroy() })
		return n
	}
	machineID := func(n *Node) string {
		t.Helper()
		out, code := run(t, n, "cat /etc/machine-id")
		if code != 0 || len(strings.TrimSpace(out)) != 32 {
			t.Fatalf("machine id: %q (%d)", out, code)
		}
		return strings.TrimSpace(out)
	}
	snapshot := func(n *Node) string {
		t.Helper()
		if err := n.PowerOff(); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := n.Snapshot(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	builder := boot(1, "")
	first := machineID(builder)
	if err := builder.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if err := builder.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if machineID(builder) != first {
		t.Errorf("the machine id changed across a power cycle")
	}
	dirty := snapshot(builder)
	a, b := boot(2, dirty), boot(3, dirty)
	if machineID(a) != first || machineID(b) != first {
		t.Errorf("servers from an uncleaned snapshot: %s, %s; want the snapshot's %s", machineID(a), machineID(b), first)
	}
	if err := builder.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, builder, "cloud-init clean --logs --machine-id"); code != 0 {
		t.Fatalf("cloud-init clean: %d %s", code, out)
	}
	clean := snapshot(builder)
	c, d := boot(4, clean), boot(5, clean)
	if machineID(c) == machineID(d) || machineID(c) == first {
		t.Errorf("servers from a cleaned snapshot: %s and %s (the builder's %s); want two new ids", machineID(c), machineID(d), first)
	}
}

// TestInconsistentDisk: on a disk from an image taken of a running
// server, k3s does not start, and says why.
func TestInconsistentDisk(t *testing.T) {
	n, err := NewNode(Config{Dir: t.TempDir()}, hcloudfake.MachineSpec{ServerID: 9, Name: "n", ImageInconsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	n.writeFile(k3sUnit, []byte("[Unit]\n"), 0o644)
	out, code := run(t, n, "systemctl start k3s")
	if code == 0 || !strings.Contains(out, "taken while its server was running") {
		t.Errorf("systemctl start k3s: %d %q; want a failure naming the inconsistent image", code, out)
	}
	// The damage travels with snapshots.
	if err := n.PowerOff(); err != nil {
		t.Fatal(err)
	}
	img := t.TempDir()
	if err := n.Snapshot(img); err != nil {
		t.Fatal(err)
	}
	if err := n.Reimage(hcloudfake.Disk{ImageDir: img}); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	n.writeFile(k3sUnit, []byte("[Unit]\n"), 0o644)
	if _, code := run(t, n, "systemctl start k3s"); code == 0 {
		t.Errorf("k3s started on a disk from a snapshot of a damaged one")
	}
}
