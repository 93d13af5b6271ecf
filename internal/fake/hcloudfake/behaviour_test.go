package hcloudfake

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jonboulle/clockwork"
	"golang.org/x/crypto/ssh"
)

func inRule(port string, cidrs ...string) schemaRule {
	return schemaRule{dir: hcloud.FirewallRuleDirectionIn, proto: hcloud.FirewallRuleProtocolTCP, port: port, cidrs: cidrs}
}

type schemaRule struct {
	dir   hcloud.FirewallRuleDirection
	proto hcloud.FirewallRuleProtocol
	port  string
	cidrs []string
}

func (r schemaRule) rule(t *testing.T) hcloud.FirewallRule {
	out := hcloud.FirewallRule{Direction: r.dir, Protocol: r.proto}
	if r.port != "" {
		out.Port = hcloud.Ptr(r.port)
	}
	if r.dir == hcloud.FirewallRuleDirectionOut {
		out.DestinationIPs = mustCIDRs(t, r.cidrs...)
	} else {
		out.SourceIPs = mustCIDRs(t, r.cidrs...)
	}
	return out
}

func rules(t *testing.T, rs ...schemaRule) []hcloud.FirewallRule {
	out := []hcloud.FirewallRule{}
	for _, r := range rs {
		out = append(out, r.rule(t))
	}
	return out
}

// TestFirewallsAdmit: a connection to a public port comes in when no
// firewall applies to the server; once one does (by label selector,
// looked at when the connection comes), only what an in rule for tcp of
// one of the applied firewalls allows, by port (single, range, any) and
// source CIDR; out rules and other protocols do not open anything; a
// firewall without rules drops everything; new rules are in force when
// their set_rules action has succeeded.
func TestFirewallsAdmit(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, c := start(t, Config{Clock: clock, Durations: map[string]time.Duration{"set_firewall_rules": 10 * time.Second}})
	res := createServer(t, c, "fw", map[string]string{"role": "node"})
	id := res.Server.ID
	provisioner, elsewhere, v6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")
	type probe struct {
		port int
		src  netip.Addr
		want bool
	}
	check := func(what string, probes ...probe) {
		t.Helper()
		for _, p := range probes {
			if got := s.Admits(id, p.port, p.src); got != p.want {
				t.Errorf("%s: port %d from %s admitted %v, want %v", what, p.port, p.src, got, p.want)
			}
		}
	}
	check("no firewall", probe{22, elsewhere, true}, probe{6443, v6, true}, probe{1, provisioner, true})

	fw, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
		Name: "nodes",
		Rules: rules(t,
			inRule("22", "203.0.113.7/32"),
			inRule("1024-65535", "0.0.0.0/0", "::/0"),
			schemaRule{dir: hcloud.FirewallRuleDirectionOut, proto: hcloud.FirewallRuleProtocolTCP, port: "any", cidrs: []string{"0.0.0.0/0"}},
			schemaRule{dir: hcloud.FirewallRuleDirectionIn, proto: hcloud.FirewallRuleProtocolUDP, port: "80", cidrs: []string{"0.0.0.0/0"}},
			schemaRule{dir: hcloud.FirewallRuleDirectionIn, proto: hcloud.FirewallRuleProtocolICMP, cidrs: []string{"0.0.0.0/0"}},
		),
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector, LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "role=node"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	check("by label selector",
		probe{22, provisioner, true}, probe{22, elsewhere, false}, probe{22, v6, false},
		probe{6443, provisioner, true}, probe{1024, elsewhere, true}, probe{65535, v6, true},
		probe{80, elsewhere, false}, probe{1023, provisioner, false},
	)
	if s.Admits(424242, 22, provisioner) {
		t.Errorf("an unknown server admits connections")
	}

	// The selector is evaluated at each connection.
	if _, _, err := c.Server.Update(ctx, res.Server, hcloud.ServerUpdateOpts{Labels: map[string]string{"role": "builder"}}); err != nil {
		t.Fatal(err)
	}
	check("label no longer matches", probe{22, elsewhere, true}, probe{80, elsewhere, true})
	if _, _, err := c.Server.Update(ctx, res.Server, hcloud.ServerUpdateOpts{Labels: map[string]string{"role": "node"}}); err != nil {
		t.Fatal(err)
	}
	check("label matches again", probe{22, elsewhere, false})

	// New rules count once their action succeeded.
	actions, _, err := c.Firewall.SetRules(ctx, fw.Firewall, hcloud.FirewallSetRulesOpts{Rules: rules(t, inRule("any", "198.51.100.0/24"))})
	if err != nil {
		t.Fatal(err)
	}
	check("set_rules running", probe{22, provisioner, true}, probe{22, elsewhere, false})
	clock.Advance(10 * time.Second)
	if a, _, err := c.Action.GetByID(ctx, actions[0].ID); err != nil || a.Status != hcloud.ActionStatusSuccess {
		t.Fatalf("set_rules action: %v, %v", a, err)
	}
	check("set_rules done", probe{22, provisioner, false}, probe{22, elsewhere, true}, probe{443, elsewhere, true})

	// A second firewall applied directly: the rules of both count.
	empty, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
		Name:    "ssh",
		Rules:   rules(t, inRule("22", "203.0.113.0/24")),
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: id}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	check("two firewalls", probe{22, provisioner, true}, probe{22, elsewhere, true}, probe{443, provisioner, false})

	// Without any in rule, everything is dropped.
	for _, f := range []*hcloud.Firewall{fw.Firewall, empty.Firewall} {
		if _, _, err := c.Firewall.SetRules(ctx, f, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{}}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(10 * time.Second)
	s.Settle()
	check("no rules", probe{22, provisioner, false}, probe{443, elsewhere, false}, probe{1, v6, false})
}

// TestFirewallOnASimulatedMachine: the machine behind a server asks the
// fake at every connection; a dropped one hears nothing.
func TestFirewallOnASimulatedMachine(t *testing.T) {
	ctx := context.Background()
	var spec MachineSpec
	s, c := start(t, Config{Machines: func(sp MachineSpec) (Machine, error) {
		spec = sp
		return &stubMachine{}, nil
	}})
	res := createServer(t, c, "m", map[string]string{"role": "node"})
	s.Settle()
	if spec.Admit == nil {
		t.Fatal("the machine was given no firewall check")
	}
	lo := netip.MustParseAddr("127.0.0.1")
	if !spec.Admit(22, lo) {
		t.Errorf("no firewall, but SSH from loopback is dropped")
	}
	if _, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
		Name: "nodes", Rules: rules(t, inRule("22", "10.0.0.0/8")),
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector, LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "role=node"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if spec.Admit(22, lo) {
		t.Errorf("SSH from loopback admitted although only 10.0.0.0/8 may come in")
	}
	if spec.ServerID != res.Server.ID {
		t.Errorf("spec of server %d, want %d", spec.ServerID, res.Server.ID)
	}
}

// stubMachine records the operations a fake server's machine gets.
type stubMachine struct {
	ops []string
}

func (m *stubMachine) PowerOn() error            { m.ops = append(m.ops, "on"); return nil }
func (m *stubMachine) PowerOff() error           { m.ops = append(m.ops, "off"); return nil }
func (m *stubMachine) Reimage(d Disk) error      { m.ops = append(m.ops, "reimage"); return nil }
func (m *stubMachine) Snapshot(dir string) error { m.ops = append(m.ops, "snapshot"); return nil }
func (m *stubMachine) Destroy() error            { m.ops = append(m.ops, "destroy"); return nil }
func (m *stubMachine) Ports() map[int]string     { return map[int]string{} }

// TestShutdownIsAsynchronous: the shutdown action succeeds when the ACPI
// request is delivered; the server goes off ShutdownDelay later, never
// when its OS ignores ACPI (only poweroff helps then), and a power change
// in between overtakes it.
func TestShutdownIsAsynchronous(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var machine *stubMachine
	s, c := start(t, Config{Clock: clock, DefaultDuration: time.Second, ShutdownDelay: 30 * time.Second,
		Machines: func(MachineSpec) (Machine, error) { machine = &stubMachine{}; return machine, nil }})
	res := createServer(t, c, "acpi", nil)
	clock.Advance(time.Second)
	status := func() hcloud.ServerStatus {
		t.Helper()
		srv, _, err := c.Server.GetByID(ctx, res.Server.ID)
		if err != nil {
			t.Fatal(err)
		}
		return srv.Status
	}
	a, _, err := c.Server.Shutdown(ctx, res.Server)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if got, _, _ := c.Action.GetByID(ctx, a.ID); got.Status != hcloud.ActionStatusSuccess {
		t.Fatalf("shutdown action: %s", got.Status)
	}
	if st := status(); st != hcloud.ServerStatusRunning {
		t.Errorf("right after the shutdown action: %s, want running (the OS is shutting down)", st)
	}
	clock.Advance(29 * time.Second)
	if st := status(); st != hcloud.ServerStatusRunning {
		t.Errorf("29 s after: %s, want running", st)
	}
	clock.Advance(time.Second)
	if st := status(); st != hcloud.ServerStatusOff {
		t.Errorf("30 s after: %s, want off", st)
	}
	if n := len(machine.ops); n == 0 || machine.ops[n-1] != "off" {
		t.Errorf("machine operations: %v, want the last one off", machine.ops)
	}

	// A reboot while the OS shuts down: the shutdown is overtaken.
	if _, _, err := c.Server.Poweron(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, _, err := c.Server.Shutdown(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if _, _, err := c.Server.Reboot(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if st := status(); st != hcloud.ServerStatusRunning {
		t.Errorf("a reboot after the shutdown request: %s, want running", st)
	}

	// An OS that ignores ACPI never goes off; poweroff cuts the power.
	s.SetIgnoreACPI(res.Server.ID, true)
	if _, _, err := c.Server.Shutdown(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if st := status(); st != hcloud.ServerStatusRunning {
		t.Errorf("ACPI ignored, an hour later: %s, want running", st)
	}
	if _, _, err := c.Server.Poweroff(ctx, res.Server); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if st := status(); st != hcloud.ServerStatusOff {
		t.Errorf("after poweroff: %s, want off", st)
	}

	// The global switch.
	s2, c2 := start(t, Config{Clock: clock, IgnoreACPI: true})
	res2 := createServer(t, c2, "deaf", nil)
	if got, err := act(ctx, c2, res2.Server, c2.Server.Shutdown); err != nil || got != hcloud.ServerStatusRunning {
		t.Errorf("IgnoreACPI: after shutdown %s, %v; want running", got, err)
	}
	_ = s2
}

// TestRebuild: the server comes back in the power state it had (off stays
// off: the docs only promise the power-off before); user_data given with
// the rebuild replaces the server's, otherwise it is kept.
func TestRebuild(t *testing.T) {
	ctx := context.Background()
	var machine *stubMachine
	var disks []Disk
	s, c := start(t, Config{Machines: func(MachineSpec) (Machine, error) {
		machine = &stubMachine{}
		return diskRecorder{machine, &disks}, nil
	}})
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "rb", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}, UserData: "#cloud-config\n# first\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatal(err)
	}
	rebuild := func(userData *string) hcloud.ServerStatus {
		t.Helper()
		rb, _, err := c.Server.RebuildWithResult(ctx, res.Server, hcloud.ServerRebuildOpts{Image: &hcloud.Image{Name: "ubuntu-24.04"}, UserData: userData})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Action.WaitFor(ctx, rb.Action); err != nil {
			t.Fatal(err)
		}
		srv, _, _ := c.Server.GetByID(ctx, res.Server.ID)
		return srv.Status
	}
	userData := func() string { return s.Servers()[0].UserData }
	if st := rebuild(nil); st != hcloud.ServerStatusRunning {
		t.Errorf("rebuild of a running server: %s, want running", st)
	}
	if got := userData(); got != "#cloud-config\n# first\n" {
		t.Errorf("user data after a rebuild without one: %q, want the create's", got)
	}
	if st, err := act(ctx, c, res.Server, c.Server.Poweroff); err != nil || st != hcloud.ServerStatusOff {
		t.Fatal(st, err)
	}
	machine.ops = nil
	if st := rebuild(hcloud.Ptr("#cloud-config\n# second\n")); st != hcloud.ServerStatusOff {
		t.Errorf("rebuild of an off server: %s, want off", st)
	}
	if got := userData(); got != "#cloud-config\n# second\n" {
		t.Errorf("user data after a rebuild with one: %q", got)
	}
	for _, op := range machine.ops {
		if op == "on" {
			t.Errorf("the machine of an off server was powered on by a rebuild: %v", machine.ops)
		}
	}
	if last := disks[len(disks)-1]; last.UserData != "#cloud-config\n# second\n" {
		t.Errorf("the machine's disk got user data %q", last.UserData)
	}
	_, _, err = c.Server.RebuildWithResult(ctx, res.Server, hcloud.ServerRebuildOpts{Image: &hcloud.Image{Name: "ubuntu-24.04"}, UserData: hcloud.Ptr(string(make([]byte, 33<<10)))})
	if !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("rebuild with 33 KiB of user data: %v, want invalid_input", err)
	}
}

type diskRecorder struct {
	*stubMachine
	disks *[]Disk
}

func (d diskRecorder) Reimage(disk Disk) error {
	*d.disks = append(*d.disks, disk)
	return d.stubMachine.Reimage(disk)
}

// TestImageOfARunningServerIsInconsistent: create_image of a server that
// is not off gives an image marked inconsistent, and so does an image of
// a server built from one; a server created or rebuilt from it gets a disk
// marked so.
func TestImageOfARunningServerIsInconsistent(t *testing.T) {
	ctx := context.Background()
	var specs []MachineSpec
	var disks []Disk
	s, c := start(t, Config{Machines: func(sp MachineSpec) (Machine, error) {
		specs = append(specs, sp)
		return diskRecorder{&stubMachine{}, &disks}, nil
	}})
	res := createServer(t, c, "src", nil)
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatal(err)
	}
	snapshot := func(srv *hcloud.Server) *hcloud.Image {
		t.Helper()
		ir, _, err := c.Server.CreateImage(ctx, srv, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Action.WaitFor(ctx, ir.Action); err != nil {
			t.Fatal(err)
		}
		return ir.Image
	}
	inconsistent := func(id int64) bool {
		for _, img := range s.Images() {
			if img.ID == id {
				return img.Inconsistent
			}
		}
		t.Fatalf("no image %d", id)
		return false
	}
	hot := snapshot(res.Server)
	if !inconsistent(hot.ID) {
		t.Errorf("image of a running server: not marked inconsistent")
	}
	if st, err := act(ctx, c, res.Server, c.Server.Poweroff); err != nil || st != hcloud.ServerStatusOff {
		t.Fatal(st, err)
	}
	if cold := snapshot(res.Server); inconsistent(cold.ID) {
		t.Errorf("image of an off server: marked inconsistent")
	}
	res2, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "from-hot", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: hot})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res2.Action}, res2.NextActions...)...); err != nil {
		t.Fatal(err)
	}
	if last := specs[len(specs)-1]; !last.ImageInconsistent {
		t.Errorf("a server from the inconsistent image got a consistent disk")
	}
	if st, err := act(ctx, c, res2.Server, c.Server.Poweroff); err != nil || st != hcloud.ServerStatusOff {
		t.Fatal(st, err)
	}
	if again := snapshot(res2.Server); !inconsistent(again.ID) {
		t.Errorf("image of a server built from an inconsistent image: not marked")
	}
	rb, _, err := c.Server.RebuildWithResult(ctx, res.Server, hcloud.ServerRebuildOpts{Image: hot})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Action.WaitFor(ctx, rb.Action); err != nil {
		t.Fatal(err)
	}
	if last := disks[len(disks)-1]; !last.Inconsistent {
		t.Errorf("a rebuild from the inconsistent image got a consistent disk")
	}
}

// TestImagesPaginateAndSort: GET /images pages like every list (25 by
// default, at most 50, meta.pagination), and sorts by the sort parameter.
func TestImagesPaginateAndSort(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	_, c := start(t, Config{Clock: clock})
	res := createServer(t, c, "src", nil)
	clock.Advance(time.Minute)
	for i := range 60 {
		ir, _, err := c.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot, Labels: map[string]string{"n": strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		_ = ir
	}
	opts := hcloud.ImageListOpts{Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}}
	page, resp, err := c.Image.List(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Meta.Pagination; len(page) != 25 || p == nil || p.PerPage != 25 || p.NextPage != 2 || p.LastPage != 3 || p.TotalEntries != 60 {
		t.Errorf("first page: %d images, pagination %+v; want 25 of 60, 3 pages", len(page), p)
	}
	opts.PerPage = 50
	if page, _, _ = c.Image.List(ctx, opts); len(page) != 50 {
		t.Errorf("per_page 50: %d images", len(page))
	}
	opts.PerPage = 51
	if _, _, err := c.Image.List(ctx, opts); !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("per_page 51: %v, want invalid_input", err)
	}
	opts.PerPage = 0
	all, err := c.Image.AllWithOpts(ctx, opts)
	if err != nil || len(all) != 60 {
		t.Fatalf("all pages: %d, %v", len(all), err)
	}
	opts.Sort = []string{"created:desc"}
	opts.PerPage = 1
	if page, _, _ = c.Image.List(ctx, opts); len(page) != 1 || page[0].Labels["n"] != "59" {
		t.Errorf("newest first: got %v", page)
	}
	opts.Sort = []string{"size"}
	if _, _, err := c.Image.List(ctx, opts); !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("sort by an unknown field: %v, want invalid_input", err)
	}
}

// TestSSHKeyUniqueness: a second key with the same public key is refused
// as the docs' example shows (uniqueness_error on public_key), whatever
// its name; the first is found by its fingerprint.
func TestSSHKeyUniqueness(t *testing.T) {
	ctx := context.Background()
	s, c := start(t, Config{})
	pub := testPublicKey(t)
	first, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "someone's", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "smek", PublicKey: pub})
	var herr hcloud.Error
	if !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		t.Fatalf("same public key under another name: %v, want uniqueness_error", err)
	}
	herr, _ = err.(hcloud.Error)
	if herr.Response().StatusCode != http.StatusConflict || herr.Message != "SSH key with the same fingerprint already exists" {
		t.Errorf("error: %d %q", herr.Response().StatusCode, herr.Message)
	}
	// hcloud-go decodes details of invalid_input only: look at the body.
	body, _ := json.Marshal(map[string]string{"name": "third", "public_key": pub})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/ssh_keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-token")
	raw, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Body.Close()
	var envelope struct {
		Error struct {
			Code    string
			Details struct{ Fields []struct{ Name string } }
		}
	}
	if err := json.NewDecoder(raw.Body).Decode(&envelope); err != nil || envelope.Error.Code != "uniqueness_error" ||
		len(envelope.Error.Details.Fields) != 1 || envelope.Error.Details.Fields[0].Name != "public_key" {
		t.Errorf("error body: %+v, %v; want uniqueness_error on the field public_key", envelope, err)
	}
	parsed, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pub))
	got, _, err := c.SSHKey.GetByFingerprint(ctx, ssh.FingerprintLegacyMD5(parsed))
	if err != nil || got == nil || got.ID != first.ID {
		t.Errorf("by fingerprint: %v, %v; want key %d", got, err, first.ID)
	}
}

// TestPlacementError: a create in a location that cannot place the server
// fails with 412 placement_error (or the code given); other locations
// work; clearing it lets creates through again.
func TestPlacementError(t *testing.T) {
	ctx := context.Background()
	s, c := start(t, Config{})
	s.FailPlacement("fsn1", "")
	create := func(name, loc string) error {
		_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}, Location: &hcloud.Location{Name: loc}})
		return err
	}
	err := create("a", "fsn1")
	if !hcloud.IsError(err, hcloud.ErrorCodePlacementError) {
		t.Fatalf("create in fsn1: %v, want placement_error", err)
	}
	if herr, _ := err.(hcloud.Error); herr.Response().StatusCode != http.StatusPreconditionFailed {
		t.Errorf("status: %d, want 412", herr.Response().StatusCode)
	}
	if err := create("a", "nbg1"); err != nil {
		t.Errorf("create in nbg1: %v", err)
	}
	s.FailPlacement("hel1", CodeResourceUnavailable)
	if err := create("b", "hel1"); !hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable) {
		t.Errorf("create in hel1: %v, want resource_unavailable", err)
	}
	s.ClearPlacement("fsn1")
	if err := create("c", "fsn1"); err != nil {
		t.Errorf("create in fsn1 after clearing: %v", err)
	}
}
