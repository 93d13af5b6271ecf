package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/cluster"
)

// CheckStatus is the outcome of one step of a preflight check.
type CheckStatus string

// The outcomes of a step. A warning does not fail the check.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "warn"
	CheckFail CheckStatus = "FAIL"
	CheckSkip CheckStatus = "skip"
)

// CheckStep is one line of a preflight check.
type CheckStep struct {
	Name   string      `json:"name"`
	Status CheckStatus `json:"status"`
	Detail string      `json:"detail"`
}

// CheckConfig says what Check verifies beyond the backend's configuration.
type CheckConfig struct {
	// Versions are the Kubernetes versions whose golden snapshots must be
	// available; empty: every version that has one (at least one must).
	// The server boots from the newest.
	Versions []string
	// Size is the cluster size whose server type boots (default 1-mid).
	Size string
	// Image runs the test HTTP server (`httpd -f -p 8080`) and the PVC's
	// consumer (default DefaultCheckImage).
	Image string
	// PortAddr returns the host:port at which this machine reaches public
	// port p of the server ("" while it is not there yet). Default: the
	// server's public IPv4 and p; the fake needs FakePortAddr.
	PortAddr func(ctx context.Context, s *hcloud.Server, p int) (string, error)
	// Report, when set, is called with each step as it ends.
	Report func(CheckStep)
}

// DefaultCheckImage runs the check's test pods.
const DefaultCheckImage = "docker.io/library/busybox:1.37"

// The steps of the boot part, in order; they are reported as skipped when
// an earlier step failed.
const (
	stepCreate   = "create server"
	stepSSH      = "ssh from here"
	stepK3s      = "k3s bootstrap"
	stepCoreDNS  = "coredns"
	stepPVC      = "persistent volume"
	stepLB       = "loadbalancer service"
	stepDelete   = "delete server"
	checkNS      = "smek-check"
	checkHTTPPod = "check-http"
)

// CheckResult is the outcome of Check.
type CheckResult struct {
	Steps []CheckStep `json:"steps"`
	// ServerID is the server the check booted (0: none).
	ServerID int64 `json:"server_id,omitempty"`
	// ServerSeconds is how long the server existed, from the create
	// request to the answer of its delete.
	ServerSeconds float64 `json:"server_seconds"`
	// BilledHours are the started hours Hetzner bills for it; HourlyPrice
	// (gross, in the account's currency, "" when unknown) times them is
	// Cost.
	BilledHours int    `json:"billed_hours"`
	HourlyPrice string `json:"hourly_price,omitempty"`
	Cost        string `json:"cost,omitempty"`
}

// Failed counts the failed steps.
func (r CheckResult) Failed() int {
	n := 0
	for _, s := range r.Steps {
		if s.Status == CheckFail {
			n++
		}
	}
	return n
}

// Check is the preflight of a first deployment: step by step, it proves
// that the token works and may write, that the locations and server types
// exist and are offered, that the golden snapshots are available, that the
// firewall configuration admits SSH, and then boots one server from the
// snapshot the way the pool does (same labels, so the reconciler removes
// it as an orphan if the check is killed), bootstraps it, proves from here
// that SSH, a bound PVC, CoreDNS and a LoadBalancer Service on port 80
// work, and deletes it: also when a step fails or ctx ends. A step that
// cannot run because an earlier one failed is reported as skipped.
func (b *Backend) Check(ctx context.Context, cc CheckConfig) CheckResult {
	if cc.Size == "" {
		cc.Size = cluster.SizeMid
	}
	if cc.Image == "" {
		cc.Image = DefaultCheckImage
	}
	if cc.PortAddr == nil {
		cc.PortAddr = func(_ context.Context, s *hcloud.Server, p int) (string, error) {
			return net.JoinHostPort(s.PublicNet.IPv4.IP.String(), strconv.Itoa(p)), nil
		}
	}
	c := &checker{b: b, cc: cc, prices: map[string]string{}}
	if c.token(ctx) {
		c.locations()
		c.serverTypes(ctx)
		c.firewall(ctx)
	}
	img := c.snapshots(ctx)
	if c.failed() || img == nil {
		c.skip(stepCreate, stepSSH, stepK3s, stepCoreDNS, stepPVC, stepLB, stepDelete)
		return c.res
	}
	c.boot(ctx, img)
	return c.res
}

type checker struct {
	b   *Backend
	cc  CheckConfig
	res CheckResult
	// apiDown: the token or the API failed, later API steps are skipped.
	apiDown bool
	// locs are the project's locations (the token step reads them).
	locs []*hcloud.Location
	// prices are the hourly gross prices of the size's server type by
	// location.
	prices map[string]string
}

func (c *checker) report(name string, st CheckStatus, format string, a ...any) {
	s := step(name, st, format, a...)
	c.res.Steps = append(c.res.Steps, s)
	if c.cc.Report != nil {
		c.cc.Report(s)
	}
}

func step(name string, st CheckStatus, format string, a ...any) CheckStep {
	return CheckStep{Name: name, Status: st, Detail: fmt.Sprintf(format, a...)}
}

func (c *checker) skip(names ...string) {
	for _, n := range names {
		c.report(n, CheckSkip, "an earlier step failed")
	}
}

func (c *checker) failed() bool { return c.res.Failed() > 0 }

// token proves that the token reads (a list of locations) and writes: it
// registers a throwaway SSH key labelled with the installation and deletes
// it again. A read-only token is refused with token_readonly.
func (c *checker) token(ctx context.Context) bool {
	b := c.b
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		c.locs, resp, err = b.cfg.Client.Location.List(ctx, hcloud.LocationListOpts{ListOpts: hcloud.ListOpts{PerPage: 50}})
		return resp, err
	})
	if err != nil {
		c.apiDown = true
		if hcloud.IsError(err, hcloud.ErrorCodeUnauthorized) {
			c.report("token", CheckFail, "the API does not accept the token (unauthorized): check --hcloud-token-file / SMEK_HCLOUD_TOKEN and that the token was not deleted")
		} else {
			c.report("token", CheckFail, "read: %v", err)
		}
		c.skip("locations", "server types", "firewall")
		return false
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	spub, _ := ssh.NewPublicKey(pub)
	name := "smek-check-" + strings.ToLower(rand.Text()[:8])
	var key *hcloud.SSHKey
	err = b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		key, resp, err = b.cfg.Client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{
			Name: name, PublicKey: string(ssh.MarshalAuthorizedKey(spub)),
			Labels: map[string]string{LabelInstall: b.cfg.Installation, LabelRole: "check"},
		})
		return resp, err
	})
	switch {
	case hcloud.IsError(err, hcloud.ErrorCodeTokenReadonly, hcloud.ErrorCodeForbidden):
		c.report("token", CheckFail, "the token reads but may not write (%s): make a token with Read & Write permission (Cloud Console → the project → Security → API tokens)", errorCode(err))
		return true
	case err != nil:
		c.report("token", CheckFail, "reads, but registering a throwaway ssh key failed: %v", err)
		return true
	}
	// The key goes also when ctx ended meanwhile.
	dctx := context.WithoutCancel(ctx)
	err = b.budget.do(dctx, func() (*hcloud.Response, error) { return b.cfg.Client.SSHKey.Delete(dctx, key) })
	if err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
		c.report("token", CheckFail, "registered the throwaway ssh key %s (id %d) but could not delete it: %v; delete it by hand", name, key.ID, err)
		return true
	}
	c.report("token", CheckOK, "reads and writes (registered and deleted the throwaway ssh key %s)", name)
	return true
}

func errorCode(err error) string {
	var he hcloud.Error
	if errors.As(err, &he) {
		return string(he.Code)
	}
	return "error"
}

// locations checks that every configured location is among those the
// token step listed.
func (c *checker) locations() {
	b, all := c.b, c.locs
	var known, found, missing []string
	for _, l := range all {
		known = append(known, l.Name)
	}
	for _, want := range b.cfg.Locations {
		i := slices.IndexFunc(all, func(l *hcloud.Location) bool { return l.Name == want })
		if i < 0 {
			missing = append(missing, want)
			continue
		}
		found = append(found, fmt.Sprintf("%s (%s, %s)", want, all[i].City, all[i].Country))
	}
	if len(missing) > 0 {
		c.report("locations", CheckFail, "no such location: %s (--location; the project sees %s)", strings.Join(missing, ", "), strings.Join(known, ", "))
		return
	}
	c.report("locations", CheckOK, "%s", strings.Join(found, ", "))
}

// serverTypes checks that each size's server type exists and is offered
// in every configured location: the API lists the locations a type is
// supported in, each with a deprecation whose unavailable_after, once
// past, means it can no longer be created there.
func (c *checker) serverTypes(ctx context.Context) {
	b := c.b
	sizes := make([]string, 0, len(b.cfg.ServerTypes))
	for s := range b.cfg.ServerTypes {
		sizes = append(sizes, s)
	}
	slices.Sort(sizes)
	for _, size := range sizes {
		name := b.cfg.ServerTypes[size]
		step := fmt.Sprintf("server type %s (%s)", name, size)
		var st *hcloud.ServerType
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			st, resp, err = b.cfg.Client.ServerType.GetByName(ctx, name)
			return resp, err
		})
		if err != nil {
			c.report(step, CheckFail, "get server type: %v", err)
			continue
		}
		if st == nil {
			c.report(step, CheckFail, "no such server type at Hetzner")
			continue
		}
		status := CheckOK
		var notes []string
		for _, loc := range b.cfg.Locations {
			price := ""
			for _, p := range st.Pricings {
				if p.Location != nil && p.Location.Name == loc {
					price = p.Hourly.Gross
				}
			}
			if size == c.cc.Size && price != "" {
				c.prices[loc] = price
			}
			i := slices.IndexFunc(st.Locations, func(l hcloud.ServerTypeLocation) bool { return l.Location != nil && l.Location.Name == loc })
			switch {
			case i < 0:
				status = CheckFail
				notes = append(notes, loc+": not offered there")
			case st.Locations[i].IsDeprecated() && !st.Locations[i].UnavailableAfter().After(b.cfg.Clock.Now()):
				status = CheckFail
				notes = append(notes, fmt.Sprintf("%s: unavailable since %s", loc, st.Locations[i].UnavailableAfter().Format(time.DateOnly)))
			case st.Locations[i].IsDeprecated():
				if status == CheckOK {
					status = CheckWarn
				}
				notes = append(notes, fmt.Sprintf("%s: deprecated, unavailable after %s", loc, st.Locations[i].UnavailableAfter().Format(time.DateOnly)))
			case price != "":
				notes = append(notes, fmt.Sprintf("%s: %s/h gross", loc, trimPrice(price)))
			default:
				notes = append(notes, loc+": offered, price unknown")
			}
		}
		c.report(step, status, "%d %s vCPU, %g GB, %d GB disk; %s", st.Cores, st.CPUType, st.Memory, st.Disk, strings.Join(notes, "; "))
	}
}

// firewall checks the configuration the backend applies: a firewall that
// admits SSH from somewhere (else no server can be bootstrapped), and
// whether the firewall at Hetzner says the same.
func (c *checker) firewall(ctx context.Context) {
	b := c.b
	if b.cfg.Firewall == "" {
		c.report("firewall", CheckWarn, "none (--firewall is empty): every port of SMEK's servers is open to the internet, SSH included")
		return
	}
	want, err := sshSources(b.cfg.SourceCIDRs)
	if err != nil {
		c.report("firewall", CheckFail, "--ssh-source-cidr: %v", err)
		return
	}
	fw, err := b.getFirewall(ctx)
	if err != nil {
		c.report("firewall", CheckFail, "%v", err)
		return
	}
	if fw == nil {
		c.report("firewall", CheckOK, "%s does not exist yet; it will admit SSH from %s", b.cfg.Firewall, prefixList(want))
		return
	}
	have := firewallSSHSources(fw)
	if !slices.Equal(have, want) {
		c.report("firewall", CheckWarn, "%s exists at Hetzner and admits SSH from %s, but --ssh-source-cidr says %s", b.cfg.Firewall, prefixList(have), prefixList(want))
		return
	}
	c.report("firewall", CheckOK, "%s admits SSH from %s", b.cfg.Firewall, prefixList(want))
}

func sshSources(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR like 203.0.113.7/32", s)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), nil
}

// firewallSSHSources are the sources a firewall admits to TCP port 22.
func firewallSSHSources(fw *hcloud.Firewall) []netip.Prefix {
	var cidrs []string
	for _, r := range fw.Rules {
		if r.Direction != hcloud.FirewallRuleDirectionIn || r.Protocol != hcloud.FirewallRuleProtocolTCP || r.Port == nil || !portIn(22, *r.Port) {
			continue
		}
		for _, n := range r.SourceIPs {
			cidrs = append(cidrs, n.String())
		}
	}
	out, _ := sshSources(cidrs)
	return out
}

// portIn says whether port p is in a rule's port ("22" or "1024-65535").
func portIn(p int, spec string) bool {
	lo, hi, isRange := strings.Cut(spec, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return false
	}
	if !isRange {
		return a == p
	}
	z, err := strconv.Atoi(hi)
	return err == nil && a <= p && p <= z
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "nowhere"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// snapshots reports the golden snapshot of each version as the backend
// finds it, and returns the newest version's.
func (c *checker) snapshots(ctx context.Context) *hcloud.Image {
	b := c.b
	if c.apiDown {
		c.report("golden snapshots", CheckSkip, "the API did not answer the token")
		return nil
	}
	imgs, err := b.snapshots(ctx, true)
	if err != nil {
		c.report("golden snapshots", CheckFail, "%v", err)
		return nil
	}
	versions := slices.Clone(c.cc.Versions)
	if len(versions) == 0 {
		for v := range imgs {
			versions = append(versions, v)
		}
	}
	if len(versions) == 0 {
		c.report("golden snapshots", CheckFail, "no available snapshot labelled %s=golden%s; build one: provisioner image build --k3s-version v1.36.3+k3s1 (with this token, in this project)", LabelRole, c.unavailable(ctx, ""))
		return nil
	}
	slices.SortFunc(versions, func(x, y string) int { return compareVersions(y, x) })
	for _, v := range versions {
		img, ok := imgs[v]
		if !ok {
			c.report("snapshot "+v, CheckFail, "no available golden snapshot for Kubernetes %s%s; build one: provisioner image build --k3s-version v%s+k3s1", v, c.unavailable(ctx, v), v)
			continue
		}
		c.report("snapshot "+v, CheckOK, "image %d (k3s %s), %s, %.1f GB, created %s", img.ID, img.Labels[LabelK3sVersion], img.Status, img.ImageSize, img.Created.UTC().Format(time.DateTime))
	}
	if c.failed() {
		return nil
	}
	return imgs[versions[0]]
}

// unavailable describes golden snapshots of version v (any when "") that
// exist but are not available, e.g. still being created.
func (c *checker) unavailable(ctx context.Context, v string) string {
	b := c.b
	sel := LabelRole + "=golden"
	if v != "" {
		sel += "," + LabelK8sVersion + "=" + v
	}
	var imgs []*hcloud.Image
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		imgs, resp, err = b.cfg.Client.Image.List(ctx, hcloud.ImageListOpts{Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}, ListOpts: hcloud.ListOpts{PerPage: 50, LabelSelector: sel}})
		return resp, err
	})
	if err != nil || len(imgs) == 0 {
		return ""
	}
	var s []string
	for _, img := range imgs {
		if img.Status != hcloud.ImageStatusAvailable {
			s = append(s, fmt.Sprintf("image %d is %s", img.ID, img.Status))
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, ", ") + ")"
}
