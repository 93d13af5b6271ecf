package k3snode

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/fake/hcloudfake"
)

// TestFirewallDropsSilently: a connection the firewall does not admit
// reaches nothing and hears nothing (a dropped SYN is a timeout for the
// client, not a refusal); once admitted, the same port answers with the
// SSH banner. The machine asks at every connection, with the peer's
// address and the public port.
func TestFirewallDropsSilently(t *testing.T) {
	key := newKey(t)
	var open atomic.Bool
	var asked atomic.Value
	n, err := NewNode(Config{Dir: t.TempDir()}, hcloudfake.MachineSpec{
		ServerID: 8, Name: "node-8", AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(key.PublicKey()))},
		Admit: func(port int, src netip.Addr) bool {
			asked.Store(netip.AddrPortFrom(src, uint16(port)))
			return open.Load()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })

	banner := func(wait time.Duration) (string, error) {
		c, err := net.Dial("tcp", n.SSHAddr())
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(wait))
		return bufio.NewReader(c).ReadString('\n')
	}
	if line, err := banner(300 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dropped connection: read %q, %v; want a timeout", line, err)
	}
	if got, want := asked.Load(), netip.MustParseAddrPort("127.0.0.1:22"); got != want {
		t.Errorf("firewall asked about %v, want %v", got, want)
	}
	open.Store(true)
	line, err := banner(time.Minute)
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("admitted connection: read %q, %v; want the SSH banner", line, err)
	}
	if err := n.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if p := n.Ports(); len(p) != 0 {
		t.Errorf("ports of a powered-off machine: %v", p)
	}
}

// TestPublicPortsKeepTheirAddress: a machine's public port stands for the
// same loopback address after a power cycle, as a server keeps its public
// address across reboots (a credential sealed at bootstrap names it).
func TestPublicPortsKeepTheirAddress(t *testing.T) {
	n := bootedNode(t, newKey(t))
	before := n.SSHAddr()
	if err := n.PowerOff(); err != nil {
		t.Fatal(err)
	}
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	if after := n.SSHAddr(); after != before || after == "" {
		t.Errorf("ssh address after a power cycle: %q, before: %q", after, before)
	}
}
