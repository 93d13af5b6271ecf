package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/crypto/ssh"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
)

// checkBackend is a backend against a fake without machines: enough for
// the steps before the boot.
func checkBackend(t *testing.T, mod func(*Config)) (*Backend, *hcloudfake.Server) {
	t.Helper()
	fake := hcloudfake.New(hcloudfake.Config{Token: "t", DefaultDuration: time.Millisecond}).Start()
	t.Cleanup(fake.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Client:       hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0})),
		Installation: "test", SSHKeyName: "smek", Signer: signer, CredentialKey: make([]byte, 32),
		Firewall: "smek", SourceCIDRs: []string{"127.0.0.1/32"}, PollMin: time.Millisecond, ExpectCreate: time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, fake
}

func stepsByName(res CheckResult) map[string]CheckStep {
	out := map[string]CheckStep{}
	for _, s := range res.Steps {
		out[s.Name] = s
	}
	return out
}

// TestCheckRefusesWhatCannotWork: each misconfiguration is a failed step
// naming what to fix, and no server is created. A firewall without SSH
// sources never gets this far: New refuses it
// (TestNewRefusesAFirewallWithoutSSHSource), and so do serve's and the
// check's flags (TestServeHetznerNeedsSSHSource).
func TestCheckRefusesWhatCannotWork(t *testing.T) {
	tests := []struct {
		name      string
		mod       func(*Config)
		step      string
		status    CheckStatus
		mentioned []string
	}{
		{"unknown location", func(c *Config) { c.Locations = []string{"fsn1", "ash9"} }, "locations", CheckFail, []string{"ash9", "--location", "nbg1"}},
		{"unknown server type", func(c *Config) { c.ServerTypes = map[string]string{cluster.SizeMid: "ccx99"} }, "server type ccx99 (1-mid)", CheckFail, []string{"no such server type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, fake := checkBackend(t, tt.mod)
			res := b.Check(context.Background(), CheckConfig{})
			s := stepsByName(res)[tt.step]
			if s.Status != tt.status {
				t.Errorf("step %q: got %+v, want %s", tt.step, s, tt.status)
			}
			for _, m := range tt.mentioned {
				if !strings.Contains(s.Detail, m) {
					t.Errorf("step %q: detail %q does not mention %q", tt.step, s.Detail, m)
				}
			}
			if s := stepsByName(res)[stepCreate]; s.Status != CheckSkip {
				t.Errorf("create server: got %+v, want skipped", s)
			}
			if n := fake.Counts()["POST /servers"]; n != 0 {
				t.Errorf("server creates: %d", n)
			}
		})
	}
}

// TestCheckFirewall: the firewall step compares the configuration with
// the firewall at Hetzner.
func TestCheckFirewall(t *testing.T) {
	ctx := context.Background()
	b, _ := checkBackend(t, nil)
	_, ten, _ := net.ParseCIDR("10.0.0.0/8")
	_, _, err := b.cfg.Client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "smek", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr("22"), SourceIPs: []net.IPNet{*ten},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{b: b}
	c.firewall(ctx)
	if s := c.res.Steps[0]; s.Status != CheckWarn || !strings.Contains(s.Detail, "admits SSH from 10.0.0.0/8, but --ssh-source-cidr says 127.0.0.1/32") {
		t.Errorf("differing firewall: got %+v", s)
	}
	b.cfg.SourceCIDRs = []string{"10.1.2.3/8"} // the same network, written unmasked
	c = &checker{b: b}
	c.firewall(ctx)
	if s := c.res.Steps[0]; s.Status != CheckOK {
		t.Errorf("matching firewall: got %+v", s)
	}
	b.cfg.Firewall = ""
	c = &checker{b: b}
	c.firewall(ctx)
	if s := c.res.Steps[0]; s.Status != CheckWarn || !strings.Contains(s.Detail, "open to the internet") {
		t.Errorf("no firewall: got %+v", s)
	}
}

func TestFirewallSSHSources(t *testing.T) {
	rule := func(dir hcloud.FirewallRuleDirection, proto hcloud.FirewallRuleProtocol, port, cidr string) hcloud.FirewallRule {
		_, n, _ := net.ParseCIDR(cidr)
		r := hcloud.FirewallRule{Direction: dir, Protocol: proto, SourceIPs: []net.IPNet{*n}}
		if port != "" {
			r.Port = hcloud.Ptr(port)
		}
		return r
	}
	in, tcp := hcloud.FirewallRuleDirectionIn, hcloud.FirewallRuleProtocolTCP
	fw := &hcloud.Firewall{Rules: []hcloud.FirewallRule{
		rule(in, tcp, "22", "203.0.113.7/32"),
		rule(in, tcp, "20-30", "198.51.100.0/24"),
		rule(in, tcp, "1024-65535", "0.0.0.0/0"),
		rule(in, hcloud.FirewallRuleProtocolUDP, "22", "192.0.2.0/24"),
		rule(in, hcloud.FirewallRuleProtocolICMP, "", "192.0.2.128/25"),
		rule(hcloud.FirewallRuleDirectionOut, tcp, "22", "10.0.0.0/8"),
	}}
	got := prefixList(firewallSSHSources(fw))
	if want := "198.51.100.0/24, 203.0.113.7/32"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestSSHClientVerdict: the address the server sees is judged against the
// firewall's port-22 sources.
func TestSSHClientVerdict(t *testing.T) {
	rules := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.7/32")}
	tests := []struct {
		out, firewall string
		want          CheckStatus
		mentioned     string
	}{
		{"203.0.113.7 53422 22\n", "smek", CheckOK, "as 203.0.113.7, admitted by firewall smek (22 from 203.0.113.7/32)"},
		{"198.51.100.9 1 22", "smek", CheckOK, "22 from 198.51.100.0/24"},
		{"::ffff:203.0.113.7 2 22", "smek", CheckOK, "as 203.0.113.7,"},
		{"192.0.2.1 53422 22", "smek", CheckWarn, "does not admit to 22 (198.51.100.0/24, 203.0.113.7/32): is the firewall applied?"},
		{"192.0.2.1 53422 22", "", CheckOK, "(no firewall)"},
		{"\n", "smek", CheckWarn, "not an address"},
		{"bash: SSH_CLIENT: unbound", "smek", CheckWarn, "not an address"},
	}
	for _, tt := range tests {
		st, detail := sshClientVerdict(tt.out, tt.firewall, rules)
		if st != tt.want || !strings.Contains(detail, tt.mentioned) {
			t.Errorf("%q, firewall %q: got %s %q, want %s mentioning %q", tt.out, tt.firewall, st, detail, tt.want, tt.mentioned)
		}
	}
}

// TestCheckServerTypeAvailability: the API lists where a server type is
// supported (locations[]), each with a deprecation whose
// unavailable_after, once past, ends creates there (openapi
// server_type.locations).
func TestCheckServerTypeAvailability(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	deprecated := func(after time.Time) schema.DeprecatableResource {
		return schema.DeprecatableResource{Deprecation: &schema.DeprecationInfo{Announced: after.AddDate(0, -3, 0), UnavailableAfter: after}}
	}
	st := schema.ServerType{
		ID: 98, Name: "ccx33", Cores: 8, Memory: 32, Disk: 240, CPUType: "dedicated", StorageType: "local", Architecture: "x86",
		Prices: []schema.PricingServerTypePrice{
			{Location: "fsn1", PriceHourly: schema.Price{Net: "0.0800", Gross: "0.0952"}},
			{Location: "nbg1", PriceHourly: schema.Price{Net: "0.0800", Gross: "0.0952"}},
		},
		Locations: []schema.ServerTypeLocation{
			{ID: 1, Name: "fsn1"},
			{ID: 2, Name: "nbg1", DeprecatableResource: deprecated(now.AddDate(0, 1, 0))},
			{ID: 3, Name: "hel1", DeprecatableResource: deprecated(now.AddDate(0, -1, 0))},
		},
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		items := []schema.ServerType{}
		if r.URL.Query().Get("name") == st.Name {
			items = append(items, st)
		}
		_ = json.NewEncoder(w).Encode(schema.ServerTypeListResponse{ServerTypes: items})
	}))
	defer api.Close()
	tests := []struct {
		locations []string
		want      CheckStatus
		mentioned []string
	}{
		{[]string{"fsn1"}, CheckOK, []string{"fsn1: 0.0952/h gross"}},
		{[]string{"fsn1", "nbg1"}, CheckWarn, []string{"nbg1: deprecated, unavailable after 2027-01-02"}},
		{[]string{"fsn1", "hel1"}, CheckFail, []string{"hel1: unavailable since 2026-11-02"}},
		{[]string{"ash"}, CheckFail, []string{"ash: not offered there"}},
	}
	for _, tt := range tests {
		b, _ := checkBackend(t, func(c *Config) {
			c.Client = hcloud.NewClient(hcloud.WithEndpoint(api.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
			c.Locations = tt.locations
			c.Clock = clockwork.NewFakeClockAt(now)
		})
		c := &checker{b: b, cc: CheckConfig{Size: cluster.SizeMid}, prices: map[string]string{}}
		c.serverTypes(context.Background())
		s := c.res.Steps[0]
		if s.Name != "server type ccx33 (1-mid)" || s.Status != tt.want {
			t.Errorf("%v: got %+v, want %s", tt.locations, s, tt.want)
		}
		for _, m := range tt.mentioned {
			if !strings.Contains(s.Detail, m) {
				t.Errorf("%v: detail %q does not mention %q", tt.locations, s.Detail, m)
			}
		}
	}
}
