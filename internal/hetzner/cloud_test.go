package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
)

// The tests of the cloud side: the fake's firewalls, shutdowns, rebuilds,
// snapshots and SSH keys against the backend, with simulated machines
// where SSH matters (no Kubernetes: nothing here starts k3s), on the
// simulated clock where time matters.

// machineEnv is a fake with simulated machines that never run k3s, on the
// wall clock with short actions, and the project's key.
type machineEnv struct {
	fake   *hcloudfake.Server
	client *hcloud.Client
	signer ssh.Signer
	key    []byte
}

func newMachineEnv(t *testing.T, fcfg hcloudfake.Config) *machineEnv {
	t.Helper()
	dir := t.TempDir()
	fcfg.Machines = k3snode.Factory(k3snode.Config{Dir: dir})
	fcfg.DataDir = dir
	if fcfg.DefaultDuration == 0 {
		fcfg.DefaultDuration = 5 * time.Millisecond
	}
	fake := hcloudfake.New(fcfg).Start()
	t.Cleanup(fake.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	client := hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	return &machineEnv{fake: fake, client: client, signer: signer, key: key}
}

// backend returns a backend on e's fake whose firewall lets SSH in from
// sources, with fast polling; change adjusts the configuration.
func (e *machineEnv) backend(t *testing.T, change func(*Config)) *Backend {
	t.Helper()
	cfg := Config{
		Client: e.client, Installation: "test", SSHKeyName: "smek", Signer: e.signer, CredentialKey: e.key,
		Firewall: "smek-nodes", SourceCIDRs: []string{"127.0.0.1/32"}, SSHAddr: FakeSSHAddr(e.fake.URL, nil),
		ExpectCreate: 10 * time.Millisecond, ExpectRebuild: 10 * time.Millisecond, ExpectPower: 10 * time.Millisecond, ExpectShutdown: 10 * time.Millisecond,
		PollMin: time.Millisecond, PollMax: 20 * time.Millisecond, RetryBase: time.Millisecond,
		ReadyTimeout: 20 * time.Second, ShutdownTimeout: 2 * time.Second,
	}
	if change != nil {
		change(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialOnly makes the backend's bootstrap an SSH login and nothing else.
func dialOnly(b *Backend) {
	b.node = nodeOps{bootstrap: func(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
		defer cancel()
		c, err := b.dial(ctx, srv, d)
		if err != nil {
			return err
		}
		return c.Close()
	}}
}

// nodeOf returns the simulated machine of server id.
func nodeOf(t *testing.T, f *hcloudfake.Server, id int64) *k3snode.Node {
	t.Helper()
	f.Settle()
	n, ok := f.MachineOf(id).(*k3snode.Node)
	if !ok {
		t.Fatalf("server %d has no simulated machine", id)
	}
	return n
}

func readDisk(t *testing.T, n *k3snode.Node, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.Disk(), path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// buildImage builds a golden image with b, or fails.
func buildImage(t *testing.T, b *Backend) *hcloud.Image {
	t.Helper()
	img, err := b.BuildImage(context.Background(), ImageConfig{K3sVersion: "v1.36.3+k3s1"})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	return img
}

// TestNewRefusesAFirewallWithoutSSHSource: SMEK reaches its servers over
// SSH only; a firewall without a source for port 22 would lock it out of
// every server it makes, so the backend does not start, and says which
// flag to set. Without a firewall of its own (the operator's) it starts.
func TestNewRefusesAFirewallWithoutSSHSource(t *testing.T) {
	e := &machineEnv{client: hcloud.NewClient(hcloud.WithToken("t")), key: make([]byte, 32)}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	e.signer, _ = ssh.NewSignerFromKey(priv)
	cfg := func(firewall string, sources ...string) Config {
		return Config{Client: e.client, Installation: "test", SSHKeyName: "smek", Signer: e.signer, CredentialKey: e.key, Firewall: firewall, SourceCIDRs: sources}
	}
	_, err := New(cfg("smek"))
	if err == nil || !strings.Contains(err.Error(), "--ssh-source-cidr") || !strings.Contains(err.Error(), "smek") {
		t.Errorf("firewall without SSH sources: %v, want an error naming --ssh-source-cidr", err)
	}
	if _, err := New(cfg("smek", "203.0.113.7")); err == nil || !strings.Contains(err.Error(), "--ssh-source-cidr") {
		t.Errorf("a source that is no CIDR: %v", err)
	}
	if _, err := New(cfg("smek", "203.0.113.7/32", " 2001:db8::/64")); err != nil {
		t.Errorf("valid sources: %v", err)
	}
	if _, err := New(cfg("")); err != nil {
		t.Errorf("no firewall of SMEK's: %v", err)
	}
}

// TestSSHOnlyThroughTheFirewall: the firewall's rules are enforced on the
// simulated machines, so a node is reachable only from --ssh-source-cidr:
// with the provisioner's address (127.0.0.1/32 here) the bootstrap logs in;
// with another, it cannot reach the server.
func TestSSHOnlyThroughTheFirewall(t *testing.T) {
	e := newMachineEnv(t, hcloudfake.Config{})
	buildImage(t, e.backend(t, nil))
	m := cluster.Member{ID: "s-fw", Flavor: flavor, State: cluster.MemberCreating}

	locked := e.backend(t, func(c *Config) {
		c.Firewall, c.SourceCIDRs, c.ReadyTimeout = "smek-locked", []string{"198.51.100.7/32"}, 2*time.Second
	})
	dialOnly(locked)
	data, err := locked.Provision(context.Background(), m)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("provision with SSH admitted only from 198.51.100.7/32: %v, want a timeout", err)
	}
	d := mustData(t, data)
	if e.fake.Admits(d.ServerID, 22, netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("the fake admits SSH from loopback")
	}
	if err := locked.Destroy(context.Background(), cluster.Member{ID: m.ID, Data: data}); err != nil {
		t.Fatal(err)
	}

	open := e.backend(t, nil)
	dialOnly(open)
	m.ID = "s-fw2"
	if _, err := open.Provision(context.Background(), m); err != nil {
		t.Fatalf("provision with SSH admitted from 127.0.0.1/32: %v", err)
	}
}

// TestChangedSSHSourceUpdatesTheFirewall: a provisioner started with
// another --ssh-source-cidr brings the existing firewall's rules in line
// (set_rules), and they are in force before it goes on; with the same
// configuration it changes nothing.
func TestChangedSSHSourceUpdatesTheFirewall(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	client := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"))
	res, _, err := client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "node", ServerType: &hcloud.ServerType{Name: "ccx13"},
		Image: &hcloud.Image{Name: "ubuntu-24.04"}, Labels: map[string]string{LabelInstall: "test", LabelRole: "node"}})
	if err != nil {
		t.Fatal(err)
	}
	from := func(cidrs ...string) *Backend {
		b := w.backend(http.DefaultTransport)
		b.cfg.SourceCIDRs = cidrs
		if err := b.ensureFirewall(ctx); err != nil {
			t.Fatal(err)
		}
		return b
	}
	old, now := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("127.0.0.1")
	from("198.51.100.7/32")
	if !w.fake.Admits(res.Server.ID, 22, old) || w.fake.Admits(res.Server.ID, 22, now) {
		t.Fatalf("first configuration not in force")
	}
	w.fake.ResetCounts()
	from("127.0.0.1/32")
	if !w.fake.Admits(res.Server.ID, 22, now) || w.fake.Admits(res.Server.ID, 22, old) {
		t.Errorf("after the change: SSH from %s admitted %v, from %s %v; want only the new source", now, w.fake.Admits(res.Server.ID, 22, now), old, w.fake.Admits(res.Server.ID, 22, old))
	}
	if n := w.fake.ActionCounts()["set_firewall_rules"]; n != 2 {
		t.Errorf("set_firewall_rules actions: %d, want 2 (create, change)", n)
	}
	fw, _, _ := client.Firewall.GetByName(ctx, "smek-nodes")
	var ssh []string
	for _, r := range fw.Rules {
		if r.Port != nil && *r.Port == "22" {
			for _, n := range r.SourceIPs {
				ssh = append(ssh, n.String())
			}
		}
	}
	if strings.Join(ssh, ",") != "127.0.0.1/32" {
		t.Errorf("port 22 rule sources: %v", ssh)
	}
	w.fake.ResetCounts()
	from("127.0.0.1/32")
	if c := w.fake.Counts(); c["POST /firewalls/{id}/actions/{action}"] != 0 || c["GET /firewalls"] != 1 {
		t.Errorf("same configuration again: requests %v, want one GET", c)
	}
}

// TestStopPowersOffAnOSThatIgnoresACPI: a stop waits for the server to go
// off after the shutdown request (the action succeeds as soon as the
// request is delivered); an OS that never reacts is powered off after
// ShutdownTimeout.
func TestStopPowersOffAnOSThatIgnoresACPI(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	b := w.backend(http.DefaultTransport)
	installStub(b)
	stop := func(id string, deaf bool) (int64, time.Duration) {
		t.Helper()
		m := cluster.Member{ID: id, Flavor: flavor, State: cluster.MemberCreating}
		data, err := b.Provision(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		m.Data, m.State = data, cluster.MemberClaimed
		srv := mustData(t, data).ServerID
		w.fake.SetIgnoreACPI(srv, deaf)
		t0 := w.clock.Now()
		if err := b.Stop(ctx, m); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if st := serverStatus(w, srv); st != string(hcloud.ServerStatusOff) {
			t.Errorf("after the stop: %s, want off", st)
		}
		return srv, w.clock.Now().Sub(t0)
	}
	before := w.fake.ActionCounts()["stop_server"]
	if _, took := stop("s-acpi", false); took < simShutdownDelay || took > time.Minute {
		t.Errorf("a stop took %s of simulated time; the OS goes off %s after the shutdown action", took, simShutdownDelay)
	}
	if n := w.fake.ActionCounts()["stop_server"] - before; n != 0 {
		t.Errorf("poweroffs for an OS that shuts down: %d", n)
	}
	if _, took := stop("s-deaf", true); took < b.cfg.ShutdownTimeout {
		t.Errorf("the poweroff came after %s, before ShutdownTimeout %s", took, b.cfg.ShutdownTimeout)
	}
	if n := w.fake.ActionCounts()["stop_server"] - before; n != 1 {
		t.Errorf("poweroffs for an OS that ignores ACPI: %d, want 1", n)
	}
}

// TestReleasePowersOnAStoppedServer: a stopped cluster's server is off; the
// rebuild leaves it off (the docs promise no power-on), so the release
// powers it on before the bootstrap; the rebuild brings a new host key in
// the server's user data.
func TestReleasePowersOnAStoppedServer(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	b := w.backend(http.DefaultTransport)
	stub := installStub(b)
	m := cluster.Member{ID: "s-stopped", Flavor: flavor, State: cluster.MemberCreating}
	data, err := b.Provision(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Data, m.State = data, cluster.MemberClaimed
	if err := b.Stop(ctx, m); err != nil {
		t.Fatal(err)
	}
	srv := mustData(t, data).ServerID
	first := mustData(t, data).HostKey
	m.State = cluster.MemberDirty
	starts := w.fake.ActionCounts()["start_server"]
	ok, data, err := b.Release(ctx, m)
	if err != nil || !ok {
		t.Fatalf("release: %v, %v", ok, err)
	}
	if st := serverStatus(w, srv); st != string(hcloud.ServerStatusRunning) {
		t.Errorf("after the release: %s, want running", st)
	}
	if n := w.fake.ActionCounts()["start_server"] - starts; n != 1 {
		t.Errorf("power-ons: %d, want 1", n)
	}
	if n := stub.bootsOf(m.ID); n != 2 {
		t.Errorf("bootstraps: %d, want 2", n)
	}
	d := mustData(t, data)
	if d.HostKey == "" || d.HostKey == first {
		t.Errorf("host key after the rebuild: %q (before %q), want a new one", d.HostKey, first)
	}
	for _, s := range w.fake.Servers() {
		if s.ID == srv && !strings.Contains(s.UserData, d.HostKey) {
			t.Errorf("the server's user data does not hold the new host key")
		}
	}
}

// TestGoldenSnapshotBeyondTheFirstPage: with more than 50 snapshots the
// newest of a version may lie beyond the first page; it is still the one
// used.
func TestGoldenSnapshotBeyondTheFirstPage(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	c := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "src", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	snap := func(version string) *hcloud.Image {
		w.clock.Advance(time.Minute)
		ir, _, err := c.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot,
			Labels: map[string]string{LabelInstall: "test", LabelRole: "golden", LabelK8sVersion: version}})
		if err != nil {
			t.Fatal(err)
		}
		return ir.Image
	}
	for range 60 {
		snap("1.35.0")
	}
	newest := snap("1.36.3")
	w.clock.Advance(time.Minute)
	b := w.backend(http.DefaultTransport)
	got, err := b.snapshotFor(ctx, "1.36.3")
	if err != nil || got.ID != newest.ID {
		t.Fatalf("snapshot for 1.36.3: %v, %v; want the newest, %d (the world's first is %d)", got, err, newest.ID, w.image.ID)
	}
	versions, err := b.Versions(ctx)
	if err != nil || strings.Join(versions, ",") != "1.36.3,1.35.0" {
		t.Errorf("versions: %v, %v", versions, err)
	}
}

// TestSSHKeyRegisteredUnderAnotherName: the project already holds SMEK's
// public key under another name, so registering it is a uniqueness_error;
// the backend finds it by fingerprint and uses it. A key of SMEK's name
// that is another key is refused.
func TestSSHKeyRegisteredUnderAnotherName(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	c := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"))
	theirs, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "ops laptop", PublicKey: string(ssh.MarshalAuthorizedKey(w.signer.PublicKey()))})
	if err != nil {
		t.Fatal(err)
	}
	b := w.backend(http.DefaultTransport)
	installStub(b)
	key, err := b.ensureSSHKey(ctx)
	if err != nil || key.ID != theirs.ID {
		t.Fatalf("ssh key: %v, %v; want the one registered as %q", key, err, theirs.Name)
	}
	if _, err := b.Provision(ctx, cluster.Member{ID: "s-key", Flavor: flavor}); err != nil {
		t.Errorf("provision with it: %v", err)
	}

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(priv)
	if _, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "smek-other", PublicKey: string(ssh.MarshalAuthorizedKey(other.PublicKey()))}); err != nil {
		t.Fatal(err)
	}
	b2 := w.backend(http.DefaultTransport)
	b2.cfg.SSHKeyName = "smek-other"
	if _, err := b2.ensureSSHKey(ctx); err == nil || !strings.Contains(err.Error(), "not the key in --ssh-key-file") {
		t.Errorf("a key of SMEK's name that is another key: %v", err)
	}
}

// TestPlacementErrorTriesTheNextLocation: a location that cannot place the
// server (placement_error, or resource_unavailable as it has also been
// answered) passes on to the next one.
func TestPlacementErrorTriesTheNextLocation(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	b := w.backend(http.DefaultTransport)
	installStub(b)
	b.cfg.Locations = []string{"fsn1", "hel1", "nbg1"}
	w.fake.FailPlacement("fsn1", "")
	w.fake.FailPlacement("hel1", hcloudfake.CodeResourceUnavailable)
	data, err := b.Provision(ctx, cluster.Member{ID: "s-place", Flavor: flavor})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	c := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"))
	srv, _, err := c.Server.GetByID(ctx, mustData(t, data).ServerID)
	if err != nil || srv == nil || srv.Location.Name != "nbg1" {
		t.Errorf("server: %v, %v; want it in nbg1", srv, err)
	}
	w.fake.FailPlacement("nbg1", "")
	if _, err := b.Provision(ctx, cluster.Member{ID: "s-place2", Flavor: flavor}); !hcloud.IsError(err, hcloud.ErrorCodePlacementError) {
		t.Errorf("no location can place it: %v, want the placement_error", err)
	}
}

// TestHostKeyPinned: the bootstrap logs in only to the host key SMEK gave
// the server (its user data): the old key a system from a snapshot
// presents before cloud-init ran is refused and the login retried, the
// adopted server of a retried create has the same key, and a server
// presenting another key is never logged in to.
func TestHostKeyPinned(t *testing.T) {
	ctx := context.Background()
	e := newMachineEnv(t, hcloudfake.Config{HostKeyLag: 2})
	b := e.backend(t, nil)
	buildImage(t, b)
	dialOnly(b)
	m := cluster.Member{ID: "s-pin", Flavor: flavor, State: cluster.MemberCreating}
	// The create's answer is lost: the retry adopts the server.
	e.fake.InjectFaults("POST /servers", hcloudfake.Fault{Status: 502, AfterEffect: true})
	data, err := b.Provision(ctx, m)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	d := mustData(t, data)
	hk, _ := b.memberHostKey(m)
	if d.HostKey != hk.public {
		t.Errorf("recorded host key %q, want the member's %q", d.HostKey, hk.public)
	}
	n := nodeOf(t, e.fake, d.ServerID)
	if got := strings.TrimSpace(readDisk(t, n, "/etc/ssh/ssh_host_ed25519_key.pub")); got != d.HostKey {
		t.Errorf("the server's host key %q, want %q", got, d.HostKey)
	}

	// Someone else's key on the address: refused, never authenticated to.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	impostor, _ := ssh.NewSignerFromKey(priv)
	d.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(impostor.PublicKey())))
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	srv := &hcloud.Server{ID: d.ServerID}
	if c, err := b.dial(short, srv, &d); err == nil || !errors.Is(err, errHostKeyMismatch) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial to a server with another host key: %v, want a host key mismatch", err)
	}
}

// TestImageBuild: the builder is shut down and found off before it is
// snapshotted (an image of a running server is marked inconsistent by the
// fake), also when its OS takes a while or ignores ACPI (powered off);
// cloud-init is cleaned with the machine id, so two servers from the image
// have ids of their own.
func TestImageBuild(t *testing.T) {
	for name, fcfg := range map[string]hcloudfake.Config{
		"slow shutdown": {ShutdownDelay: 300 * time.Millisecond},
		"ACPI ignored":  {IgnoreACPI: true},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newMachineEnv(t, fcfg)
			b := e.backend(t, func(c *Config) { c.ShutdownTimeout = time.Second })
			img := buildImage(t, b)
			for _, info := range e.fake.Images() {
				if info.ID == img.ID && info.Inconsistent {
					t.Errorf("the golden image was taken of a running builder")
				}
			}
			ids := map[string]int64{}
			for _, name := range []string{"a", "b"} {
				res, _, err := e.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: img})
				if err != nil {
					t.Fatal(err)
				}
				if err := e.client.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
					t.Fatal(err)
				}
				id := strings.TrimSpace(readDisk(t, nodeOf(t, e.fake, res.Server.ID), "/etc/machine-id"))
				if len(id) != 32 {
					t.Fatalf("machine id of %s: %q", name, id)
				}
				if other, dup := ids[id]; dup {
					t.Errorf("servers %d and %d from one snapshot share the machine id %s", other, res.Server.ID, id)
				}
				ids[id] = res.Server.ID
			}
		})
	}
}

// TestInconsistentImageFailsTheBootstrap: a golden image taken of a running
// server (what the image build did when it did not wait for "off") gives
// servers whose k3s does not start; the bootstrap says why.
func TestInconsistentImageFailsTheBootstrap(t *testing.T) {
	ctx := context.Background()
	e := newMachineEnv(t, hcloudfake.Config{})
	res, _, err := e.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "hot", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatal(err)
	}
	n := nodeOf(t, e.fake, res.Server.ID)
	if err := os.MkdirAll(filepath.Join(n.Disk(), "etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.Disk(), "etc/systemd/system/k3s.service"), []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ir, _, err := e.client.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot,
		Labels: map[string]string{LabelInstall: "test", LabelRole: "golden", LabelK8sVersion: flavor.K8sVersion}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Action.WaitFor(ctx, ir.Action); err != nil {
		t.Fatal(err)
	}
	b := e.backend(t, nil)
	_, err = b.Provision(ctx, cluster.Member{ID: "s-hot", Flavor: flavor})
	if err == nil || !strings.Contains(err.Error(), "start k3s") || !strings.Contains(err.Error(), "taken while its server was running") {
		t.Errorf("provision from an image of a running server: %v, want k3s failing to start on a damaged disk", err)
	}
}

// TestPruneImages keeps the newest snapshots of each version and those a
// member's server was built from, and deletes the rest (not in a dry run).
func TestPruneImages(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{})
	c := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "src", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := range 4 {
		w.clock.Advance(time.Minute)
		labels := map[string]string{LabelInstall: "test", LabelRole: "golden", LabelK8sVersion: "1.35.0"}
		if i == 3 {
			labels[LabelInstall] = "another"
		}
		ir, _, err := c.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot, Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ir.Image.ID)
	}
	w.clock.Advance(time.Minute)
	b := w.backend(http.DefaultTransport)
	inUse := map[int64][]string{ids[0]: {"s-old"}}
	plan, err := b.PruneImages(ctx, 1, inUse, true)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, p := range plan {
		if p.Delete {
			deleted = append(deleted, fmt.Sprint(p.ID))
		}
	}
	if want := fmt.Sprint(ids[1]); strings.Join(deleted, ",") != want {
		t.Errorf("dry run deletes %v, want only %s (%d is newest of 1.35.0, %d in use, %d another installation's, %d newest of 1.36.3): %+v",
			deleted, want, ids[2], ids[0], ids[3], w.image.ID, plan)
	}
	if n := w.fake.Counts()["DELETE /images/{id}"]; n != 0 {
		t.Errorf("deletes in a dry run: %d", n)
	}
	if _, err := b.PruneImages(ctx, 1, inUse, false); err != nil {
		t.Fatal(err)
	}
	left := map[int64]bool{}
	for _, img := range w.fake.Images() {
		left[img.ID] = true
	}
	if left[ids[1]] || !left[ids[0]] || !left[ids[2]] || !left[ids[3]] || !left[w.image.ID] {
		t.Errorf("after the prune: %v", left)
	}
	if _, err := b.PruneImages(ctx, 0, nil, true); err == nil {
		t.Errorf("keep 0 accepted")
	}
}
