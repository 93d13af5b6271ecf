package k3snode

import (
	"bytes"
	"strings"
	"testing"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/local/localtest"
)

// TestEnabledK3sStartsAtBoot: systemd starts the units enabled in
// multi-user.target at boot. After `systemctl enable k3s` a power cycle
// (Hetzner's reset, or host maintenance) brings k3s back without anyone
// logging in; after `systemctl disable k3s` it stays down.
func TestEnabledK3sStartsAtBoot(t *testing.T) {
	n, err := NewNode(Config{Dir: t.TempDir(), KubeBin: localtest.KubeBin(t)}, hcloudfake.MachineSpec{ServerID: 9, Name: "node-9"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Destroy() })
	if err := n.PowerOn(); err != nil {
		t.Fatal(err)
	}
	sh := func(line string) {
		t.Helper()
		var stderr bytes.Buffer
		if code := n.run(line, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", line, code, stderr.String())
		}
	}
	sh("curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true sh -")
	cycle := func() {
		t.Helper()
		if err := n.PowerOff(); err != nil {
			t.Fatal(err)
		}
		if err := n.PowerOn(); err != nil {
			t.Fatal(err)
		}
		<-n.Booted()
	}
	cycle()
	if n.K3sRunning() {
		t.Fatalf("k3s runs after a boot although it was never enabled")
	}
	sh("systemctl enable k3s")
	cycle()
	if !n.K3sRunning() {
		t.Fatalf("k3s does not run after a boot although it is enabled")
	}
	if n.Addr(k3sAPIPort) == "" {
		t.Errorf("k3s runs but public port %d is closed", k3sAPIPort)
	}
	sh("systemctl disable k3s")
	cycle()
	if n.K3sRunning() {
		t.Errorf("k3s runs after a boot although it was disabled")
	}
}
