package hcloudfake

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jonboulle/clockwork"
	"golang.org/x/crypto/ssh"
)

// newClient returns a real hcloud-go client for s with fast polling and
// retries, so that tests do not wait on the client's default backoff.
func newClient(s *Server, opts ...hcloud.ClientOption) *hcloud.Client {
	base := []hcloud.ClientOption{
		hcloud.WithEndpoint(s.URL),
		hcloud.WithToken("test-token"),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond)}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: 5}),
	}
	return hcloud.NewClient(append(base, opts...)...)
}

func start(t *testing.T, cfg Config) (*Server, *hcloud.Client) {
	t.Helper()
	cfg.Token = "test-token"
	s := New(cfg).Start()
	t.Cleanup(s.Close)
	return s, newClient(s)
}

func testPublicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(ssh.MarshalAuthorizedKey(sp))
}

func createServer(t *testing.T, c *hcloud.Client, name string, labels map[string]string) hcloud.ServerCreateResult {
	t.Helper()
	res, _, err := c.Server.Create(context.Background(), hcloud.ServerCreateOpts{
		Name: name, ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{Name: "ubuntu-24.04"},
		Location: &hcloud.Location{Name: "fsn1"}, Labels: labels,
	})
	if err != nil {
		t.Fatalf("create server %s: %v", name, err)
	}
	return res
}

func TestServerLifecycleThroughHcloudGo(t *testing.T) {
	ctx := context.Background()
	_, c := start(t, Config{})

	key, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "smek", PublicKey: testPublicKey(t)})
	if err != nil {
		t.Fatalf("create ssh key: %v", err)
	}
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{
		Name: "smek-1", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{Name: "ubuntu-24.04"},
		SSHKeys: []*hcloud.SSHKey{key}, Labels: map[string]string{"smek/install": "a", "smek/flavor": "x"},
	})
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	if res.Server.Status != hcloud.ServerStatusInitializing {
		t.Errorf("status after create: got %q, want initializing", res.Server.Status)
	}
	if res.RootPassword != "" {
		t.Errorf("root password set although an ssh key was given")
	}
	if err := c.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		t.Fatalf("wait for create: %v", err)
	}
	srv, _, err := c.Server.GetByID(ctx, res.Server.ID)
	if err != nil || srv == nil {
		t.Fatalf("get server: %v %v", srv, err)
	}
	if srv.Status != hcloud.ServerStatusRunning || srv.ServerType.Cores != 8 || srv.ServerType.Memory != 32 {
		t.Errorf("server: got status %q type %s %d cores %v GB, want running ccx33 8 cores 32 GB", srv.Status, srv.ServerType.Name, srv.ServerType.Cores, srv.ServerType.Memory)
	}
	if srv.PublicNet.IPv4.IP.String() != "127.0.0.1" {
		t.Errorf("ipv4: got %s, want 127.0.0.1", srv.PublicNet.IPv4.IP)
	}

	createServer(t, c, "other", map[string]string{"smek/install": "b"})
	list, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "smek/install=a"}})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 1 || list[0].ID != srv.ID {
		t.Errorf("list by label: got %d servers, want only %d", len(list), srv.ID)
	}

	steps := []struct {
		name string
		do   func() (hcloud.ServerStatus, error)
		want hcloud.ServerStatus
	}{
		{"shutdown", func() (hcloud.ServerStatus, error) { return act(ctx, c, srv, c.Server.Shutdown) }, hcloud.ServerStatusOff},
		{"poweron", func() (hcloud.ServerStatus, error) { return act(ctx, c, srv, c.Server.Poweron) }, hcloud.ServerStatusRunning},
		{"poweroff", func() (hcloud.ServerStatus, error) { return act(ctx, c, srv, c.Server.Poweroff) }, hcloud.ServerStatusOff},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: got status %q, want %q", st.name, got, st.want)
		}
	}

	img, _, err := c.Server.CreateImage(ctx, srv, &hcloud.ServerCreateImageOpts{
		Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("k3s"), Labels: map[string]string{"smek/k3s": "v1.36.3-k3s1"},
	})
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	if img.Image.Status != hcloud.ImageStatusCreating {
		t.Errorf("image status: got %q, want creating", img.Image.Status)
	}
	if err := c.Action.WaitFor(ctx, img.Action); err != nil {
		t.Fatalf("wait for image: %v", err)
	}
	snaps, err := c.Image.AllWithOpts(ctx, hcloud.ImageListOpts{Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}, ListOpts: hcloud.ListOpts{LabelSelector: "smek/k3s"}})
	if err != nil || len(snaps) != 1 || snaps[0].Status != hcloud.ImageStatusAvailable || snaps[0].CreatedFrom.ID != srv.ID {
		t.Fatalf("snapshots by label: got %+v, %v; want one available image from %d", snaps, err, srv.ID)
	}

	rb, _, err := c.Server.RebuildWithResult(ctx, srv, hcloud.ServerRebuildOpts{Image: snaps[0]})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if err := c.Action.WaitFor(ctx, rb.Action); err != nil {
		t.Fatalf("wait for rebuild: %v", err)
	}
	// The server was off (the poweroff step): the docs only say a rebuild
	// powers the server off first, and it comes back off.
	srv, _, _ = c.Server.GetByID(ctx, srv.ID)
	if srv.Image == nil || srv.Image.ID != snaps[0].ID || srv.Status != hcloud.ServerStatusOff {
		t.Errorf("after rebuild of an off server: got image %v status %q, want %d off", srv.Image, srv.Status, snaps[0].ID)
	}
	if got, err := act(ctx, c, srv, c.Server.Poweron); err != nil || got != hcloud.ServerStatusRunning {
		t.Fatalf("power on after the rebuild: %q, %v", got, err)
	}

	if _, _, err := c.Server.Update(ctx, srv, hcloud.ServerUpdateOpts{Labels: map[string]string{"smek/install": "a", "smek/cluster": "c-abcdef"}}); err != nil {
		t.Fatalf("update labels: %v", err)
	}
	list, _ = c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "smek/install=a,smek/cluster"}})
	if len(list) != 1 {
		t.Errorf("list by new label: got %d, want 1", len(list))
	}

	del, _, err := c.Server.DeleteWithResult(ctx, srv)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := c.Action.WaitFor(ctx, del.Action); err != nil {
		t.Fatalf("wait for delete: %v", err)
	}
	if got, _, err := c.Server.GetByID(ctx, srv.ID); got != nil || err != nil {
		t.Errorf("get deleted server: got %v, %v; want nil, nil", got, err)
	}
}

func act(ctx context.Context, c *hcloud.Client, s *hcloud.Server, fn func(context.Context, *hcloud.Server) (*hcloud.Action, *hcloud.Response, error)) (hcloud.ServerStatus, error) {
	a, _, err := fn(ctx, s)
	if err != nil {
		return "", err
	}
	if err := c.Action.WaitFor(ctx, a); err != nil {
		return "", err
	}
	got, _, err := c.Server.GetByID(ctx, s.ID)
	if err != nil {
		return "", err
	}
	return got.Status, nil
}

func TestActionsRunOnTheInjectedClock(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	_, c := start(t, Config{Clock: clock, Durations: map[string]time.Duration{"create_server": 10 * time.Second}})
	res := createServer(t, c, "slow", nil)

	check := func(wantStatus hcloud.ActionStatus, wantProgress int, wantServer hcloud.ServerStatus) {
		t.Helper()
		a, _, err := c.Action.GetByID(ctx, res.Action.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != wantStatus || a.Progress != wantProgress {
			t.Errorf("action: got %s %d%%, want %s %d%%", a.Status, a.Progress, wantStatus, wantProgress)
		}
		s, _, _ := c.Server.GetByID(ctx, res.Server.ID)
		if s.Status != wantServer {
			t.Errorf("server: got %q, want %q", s.Status, wantServer)
		}
	}
	check(hcloud.ActionStatusRunning, 0, hcloud.ServerStatusInitializing)
	clock.Advance(5 * time.Second)
	check(hcloud.ActionStatusRunning, 50, hcloud.ServerStatusInitializing)
	clock.Advance(5 * time.Second)
	check(hcloud.ActionStatusSuccess, 100, hcloud.ServerStatusRunning)

}

func TestServerLockedWhileActionRuns(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	_, c := start(t, Config{Clock: clock, DefaultDuration: time.Minute})
	res := createServer(t, c, "locked", nil)
	_, _, err := c.Server.Shutdown(ctx, res.Server)
	if !hcloud.IsError(err, hcloud.ErrorCodeLocked) {
		t.Fatalf("shutdown during create: got %v, want locked", err)
	}
	clock.Advance(time.Minute)
	if _, _, err := c.Server.Shutdown(ctx, res.Server); err != nil {
		t.Fatalf("shutdown after create: %v", err)
	}
}

func TestFailedAction(t *testing.T) {
	ctx := context.Background()
	s, c := start(t, Config{})
	s.FailNextAction("rebuild_server", "action_failed", "disk broken")
	res := createServer(t, c, "broken", nil)
	if err := c.Action.WaitFor(ctx, res.Action); err != nil {
		t.Fatal(err)
	}
	rb, _, err := c.Server.RebuildWithResult(ctx, res.Server, hcloud.ServerRebuildOpts{Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Action.WaitFor(ctx, rb.Action)
	var ae hcloud.ActionError
	if !asActionError(err, &ae) || ae.Code != "action_failed" {
		t.Errorf("wait for failing rebuild: got %v, want action_failed", err)
	}
}

func asActionError(err error, target *hcloud.ActionError) bool {
	ae, ok := err.(hcloud.ActionError)
	if ok {
		*target = ae
	}
	return ok
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	_, c := start(t, Config{MaxServers: 1})
	createServer(t, c, "one", nil)

	cases := []struct {
		name   string
		call   func() error
		code   hcloud.ErrorCode
		status int
	}{
		{"duplicate name", func() error {
			_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "one", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
			return err
		}, hcloud.ErrorCodeUniquenessError, 409},
		{"unknown server type", func() error {
			_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "two", ServerType: &hcloud.ServerType{Name: "nope"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
			return err
		}, hcloud.ErrorCodeInvalidInput, 400},
		{"server limit", func() error {
			_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "two", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
			return err
		}, hcloud.ErrorCodeResourceLimitExceeded, 403},
		{"unknown action", func() error {
			_, _, err := c.Action.GetByID(ctx, 999999)
			return err
		}, "", 0},
		{"delete unknown server", func() error {
			_, _, err := c.Server.DeleteWithResult(ctx, &hcloud.Server{ID: 424242})
			return err
		}, hcloud.ErrorCodeNotFound, 404},
		{"bad label selector", func() error {
			_, err := c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "a in b"}})
			return err
		}, hcloud.ErrorCodeInvalidInput, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code == "" {
				if err != nil {
					t.Errorf("got %v, want nil (hcloud-go maps 404 on get to nil)", err)
				}
				return
			}
			if !hcloud.IsError(err, tc.code) {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			var herr hcloud.Error
			herr, _ = err.(hcloud.Error)
			if got := herr.Response().StatusCode; got != tc.status {
				t.Errorf("status: got %d, want %d", got, tc.status)
			}
		})
	}
}

func TestRateLimitHeadersAnd429(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, _ := start(t, Config{Clock: clock, RateLimit: 3, RateRefill: time.Second})
	c := newClient(s, hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	for i := 2; i >= 0; i-- {
		_, resp, err := c.Location.List(ctx, hcloud.LocationListOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Meta.Ratelimit.Limit != 3 || resp.Meta.Ratelimit.Remaining != i {
			t.Errorf("rate limit: got %d/%d, want %d/3", resp.Meta.Ratelimit.Remaining, resp.Meta.Ratelimit.Limit, i)
		}
	}
	_, resp, err := c.Location.List(ctx, hcloud.LocationListOpts{})
	if !hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded) || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth request: got %v, want 429 rate_limit_exceeded", err)
	}
	reset, _ := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
	if want := clock.Now().Add(3 * time.Second).Unix(); reset != want {
		t.Errorf("reset: got %d, want %d", reset, want)
	}
	clock.Advance(time.Second)
	if _, _, err := c.Location.List(ctx, hcloud.LocationListOpts{}); err != nil {
		t.Errorf("after a refill: %v", err)
	}
	if got := s.Counts()["GET /locations"]; got != 5 {
		t.Errorf("counted: got %d, want 5", got)
	}
}

func TestScriptedFaults(t *testing.T) {
	ctx := context.Background()
	s, c := start(t, Config{})
	// hcloud-go retries 429 and a 502 without a body by itself.
	s.InjectFaults("GET /servers", Fault{Status: 429, Code: CodeRateLimitExceeded}, Fault{Status: 502})
	if _, err := c.Server.All(ctx); err != nil {
		t.Fatalf("list through retried faults: %v", err)
	}
	if got := s.Counts()["GET /servers"]; got != 3 {
		t.Errorf("requests: got %d, want 3", got)
	}
	// A 500 is not retried by hcloud-go; an after-effect fault hides a
	// create that happened.
	s.InjectFaults("POST /servers", Fault{Status: 500, Code: CodeServerError, AfterEffect: true})
	_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "ghostly", ServerType: &hcloud.ServerType{Name: "ccx33"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if !hcloud.IsError(err, hcloud.ErrorCodeServerError) {
		t.Fatalf("create: got %v, want server_error", err)
	}
	got, _, err := c.Server.GetByName(ctx, "ghostly")
	if err != nil || got == nil {
		t.Errorf("server behind a lost response: got %v, %v; want it to exist", got, err)
	}
}

func TestRandomFaultsAreReproducible(t *testing.T) {
	run := func() int {
		s := New(Config{FaultRate: 0.2, Seed: 7}).Start()
		defer s.Close()
		c := newClient(s, hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
		failed := 0
		for range 100 {
			if _, _, err := c.Location.List(context.Background(), hcloud.LocationListOpts{}); err != nil {
				failed++
			}
		}
		return failed
	}
	a, b := run(), run()
	if a != b || a < 5 || a > 40 {
		t.Errorf("failures at 20%%: got %d and %d, want the same count near 20", a, b)
	}
}

func TestFirewallByLabelSelector(t *testing.T) {
	ctx := context.Background()
	_, c := start(t, Config{})
	res := createServer(t, c, "fw", map[string]string{"smek/install": "a"})
	fw, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
		Name: "smek",
		Rules: []hcloud.FirewallRule{{
			Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr("6443"),
			SourceIPs: mustCIDRs(t, "0.0.0.0/0", "::/0"),
		}},
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector, LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "smek/install=a"}}},
	})
	if err != nil {
		t.Fatalf("create firewall: %v", err)
	}
	if err := c.Action.WaitFor(ctx, fw.Actions...); err != nil {
		t.Fatal(err)
	}
	srv, _, _ := c.Server.GetByID(ctx, res.Server.ID)
	if len(srv.PublicNet.Firewalls) != 1 || srv.PublicNet.Firewalls[0].Firewall.ID != fw.Firewall.ID {
		t.Errorf("server firewalls: got %+v, want [%d]", srv.PublicNet.Firewalls, fw.Firewall.ID)
	}
	got, _, _ := c.Firewall.GetByID(ctx, fw.Firewall.ID)
	if len(got.AppliedTo) != 1 || len(got.AppliedTo[0].AppliedToResources) != 1 {
		t.Errorf("applied_to: got %+v, want the selector with one server", got.AppliedTo)
	}
	_, _, err = c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "bad", Rules: []hcloud.FirewallRule{{Direction: "in", Protocol: "tcp"}}})
	if !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("rule without port: got %v, want invalid_input", err)
	}
}

func mustCIDRs(t *testing.T, cidrs ...string) []net.IPNet {
	t.Helper()
	var out []net.IPNet
	for _, c := range cidrs {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *n)
	}
	return out
}
