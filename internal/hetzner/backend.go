// Package hetzner is SMEK's production backend: a warm pool of Hetzner
// Cloud servers built from k3s golden snapshots (see `provisioner image
// build`), bootstrapped over SSH, claimed with a few Kubernetes calls, and
// rebuilt from the snapshot when released so no tenant data survives. It
// talks to the API through hcloud-go v2 (any endpoint, e.g. the fake in
// internal/fake/hcloudfake) and keeps to the project's request budget: actions
// are polled together with backoff, RateLimit-Remaining is watched, and
// 429/5xx answers are retried.
package hetzner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/rest"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/registrymirror"
)

// Labels on every server and snapshot SMEK makes.
const (
	LabelInstall    = "smek.io/install"
	LabelMember     = "smek.io/member"
	LabelFlavor     = "smek.io/flavor"
	LabelK3sVersion = "smek.io/k3s-version"
	LabelK8sVersion = "smek.io/k8s-version"
	LabelRole       = "smek.io/role" // "node", "builder", "golden", "hibernation"
)

// Config configures the backend.
type Config struct {
	// Client is the hcloud client. With Token set, New makes its own with
	// NewClient(Endpoint, Token, Metrics) instead, so that API calls are
	// counted and hcloud-go does not retry on its own.
	Client *hcloud.Client
	// Endpoint (default hcloud.Endpoint) and Token of the API.
	Endpoint, Token string
	// Metrics counts the API calls (nil: not counted).
	Metrics Metrics
	// Installation ties servers to this SMEK installation (a label value).
	Installation string
	// RegistryMirrors are written to every node's registries.yaml at
	// bootstrap (registriesYAML).
	RegistryMirrors []registrymirror.Mirror
	// Locations to create servers in, tried in order.
	Locations []string
	// ServerTypes maps cluster sizes to server types (default 1-mid: ccx33).
	ServerTypes map[string]string
	// SSHKeyName names the project SSH key registered at Hetzner; Signer is
	// its private half.
	SSHKeyName string
	Signer     ssh.Signer
	// Firewall is the name of the firewall applied by label selector to
	// every node (created when missing, its rules brought in line with
	// these when they differ). SourceCIDRs may reach port 22: the
	// provisioner's addresses, which SMEK bootstraps servers from, so New
	// refuses a Firewall without them. Empty Firewall: SMEK manages no
	// firewall (the operator does).
	Firewall    string
	SourceCIDRs []string
	// CredentialKey (32 bytes) seals admin credentials at rest.
	CredentialKey []byte
	// SSHAddr returns host:port of a server's SSH server (default ip:22).
	// The fake's machines listen elsewhere: see FakeSSHAddr.
	SSHAddr func(ctx context.Context, s *hcloud.Server) (string, error)
	// APIAddr returns host:port of a server's Kubernetes API (default
	// ip:6443, where k3s listens). The fake's machines listen elsewhere:
	// see FakeAPIAddr.
	APIAddr func(ctx context.Context, s *hcloud.Server) (string, error)
	// Policy, when set, applies the tenant policy bundle with the admin
	// credential after readiness (a golden image also carries it as k3s
	// auto-deploy manifests).
	Policy func(ctx context.Context, admin *rest.Config, f cluster.Flavor) error
	// Durations the API usually takes, used as the first poll delay.
	ExpectCreate, ExpectRebuild, ExpectPower time.Duration
	// ExpectShutdown is how long a server usually takes from the shutdown
	// request to off (the action, then the OS shutting down; default 10 s):
	// the first look at its status. ShutdownTimeout is how long a stop (or
	// an image build) waits for "off" before it cuts the power (default 2
	// min).
	ExpectShutdown, ShutdownTimeout time.Duration
	// PollMin/PollMax bound the action polling backoff.
	PollMin, PollMax time.Duration
	// RetryBase is the first retry backoff; LowWater the RateLimit-Remaining
	// under which calls are spaced out.
	RetryBase time.Duration
	Retries   int
	LowWater  int
	// ReadyTimeout bounds the wait for SSH and for the cluster to be ready.
	ReadyTimeout time.Duration
	// OrphanGrace is how old an unknown server must be before Reconcile
	// deletes it.
	OrphanGrace time.Duration
	// Clock times the steps and the deadlines (nil: the wall clock).
	Clock clockwork.Clock
	// Sleep waits between polls and retries (nil: a timer on Clock).
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Backend runs pool members on Hetzner Cloud.
type Backend struct {
	cfg     Config
	log     *slog.Logger
	budget  *budget
	watch   *watcher
	seal    *sealer
	keyMu   sync.Mutex // guards sshKey
	sshKey  *hcloud.SSHKey
	fwMu    sync.Mutex // guards fwReady
	fwReady bool

	// node is what runs on a server over SSH: the bootstrap after a
	// (re)build and k3s's start after a power-on. Tests of the cloud side
	// alone replace it.
	node nodeOps

	// admins keeps each member's admin client and its open connection.
	admins admins

	mu     sync.Mutex
	images map[string]*hcloud.Image // k8s version → snapshot, cached
	imgAt  time.Time
}

// nodeOps runs the steps on a server that need SSH and Kubernetes.
type nodeOps struct {
	bootstrap func(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error
	restart   func(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error
	restore   func(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error
}

var (
	_ pool.Backend    = (*Backend)(nil)
	_ pool.Reconciler = (*Backend)(nil)
	_ pool.Resumer    = (*Backend)(nil)
)

// New checks cfg and returns the backend.
func New(cfg Config) (*Backend, error) {
	if cfg.Token != "" {
		cfg.Client = NewClient(cfg.Endpoint, cfg.Token, cfg.Metrics)
	}
	if cfg.Client == nil {
		return nil, errors.New("hetzner: no hcloud client and no API token")
	}
	if cfg.Installation == "" || strings.ContainsAny(cfg.Installation, " =,!()") {
		return nil, fmt.Errorf("hetzner: installation %q is not a valid label value", cfg.Installation)
	}
	if cfg.Signer == nil || cfg.SSHKeyName == "" {
		return nil, errors.New("hetzner: an SSH key (name and private key) is required")
	}
	s, err := newSealer(cfg.CredentialKey)
	if err != nil {
		return nil, fmt.Errorf("hetzner: %w", err)
	}
	if cfg.Firewall != "" {
		// The firewall drops whatever no rule lets in: without a source
		// for port 22, SMEK could never reach the servers it makes.
		if len(cfg.SourceCIDRs) == 0 {
			return nil, fmt.Errorf("hetzner: the firewall %q would let SSH (port 22) in from nowhere, and SMEK bootstraps every server over SSH: "+
				"give the provisioner's public address(es) as SourceCIDRs (provisioner serve --ssh-source-cidr, e.g. 203.0.113.7/32), "+
				"or no Firewall (--firewall '') to manage the servers' firewall yourself", cfg.Firewall)
		}
		if _, err := firewallRules(cfg.SourceCIDRs); err != nil {
			return nil, fmt.Errorf("hetzner: --ssh-source-cidr: %w", err)
		}
	}
	if len(cfg.Locations) == 0 {
		cfg.Locations = []string{"fsn1"}
	}
	if cfg.ServerTypes == nil {
		cfg.ServerTypes = map[string]string{cluster.SizeMid: "ccx33"}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.ExpectCreate, 20*time.Second)
	def(&cfg.ExpectRebuild, 20*time.Second)
	def(&cfg.ExpectPower, 5*time.Second)
	def(&cfg.ExpectShutdown, 10*time.Second)
	def(&cfg.ShutdownTimeout, 2*time.Minute)
	def(&cfg.PollMin, time.Second)
	def(&cfg.PollMax, 10*time.Second)
	def(&cfg.RetryBase, time.Second)
	def(&cfg.ReadyTimeout, 5*time.Minute)
	def(&cfg.OrphanGrace, 15*time.Minute)
	if cfg.Retries == 0 {
		cfg.Retries = 6
	}
	if cfg.LowWater == 0 {
		cfg.LowWater = 100
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Sleep == nil {
		clock := cfg.Clock
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, clock, d) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SSHAddr == nil {
		cfg.SSHAddr = func(_ context.Context, s *hcloud.Server) (string, error) {
			return s.PublicNet.IPv4.IP.String() + ":22", nil
		}
	}
	if cfg.APIAddr == nil {
		cfg.APIAddr = func(_ context.Context, s *hcloud.Server) (string, error) {
			return net.JoinHostPort(s.PublicNet.IPv4.IP.String(), "6443"), nil
		}
	}
	a := newBudget(cfg.Sleep, cfg.RetryBase, cfg.Retries, cfg.LowWater)
	b := &Backend{
		cfg: cfg, log: cfg.Logger.With(logkey.Component, "hetzner"), budget: a, seal: s,
		watch:  newWatcher(cfg.Client, a, cfg.Sleep, cfg.PollMin, cfg.PollMax),
		images: map[string]*hcloud.Image{},
	}
	b.node = nodeOps{bootstrap: b.bootstrap, restart: b.restartK3s, restore: b.restoreK3s}
	return b, nil
}

// Name is "hetzner".
func (b *Backend) Name() string { return "hetzner" }

// RateLimitRemaining is the last RateLimit-Remaining the API sent.
func (b *Backend) RateLimitRemaining() int { return b.budget.Remaining() }

// Versions lists the Kubernetes versions that have a golden snapshot,
// newest first.
func (b *Backend) Versions(ctx context.Context) ([]string, error) {
	imgs, err := b.snapshots(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []string
	for v := range imgs {
		out = append(out, v)
	}
	slices.SortFunc(out, func(x, y string) int { return compareVersions(y, x) })
	return out, nil
}

// snapshots returns the available golden snapshots by k8s version, cached
// for a minute (one request per minute at most).
func (b *Backend) snapshots(ctx context.Context, fresh bool) (map[string]*hcloud.Image, error) {
	b.mu.Lock()
	if !fresh && len(b.images) > 0 && b.cfg.Clock.Now().Sub(b.imgAt) < time.Minute {
		defer b.mu.Unlock()
		return b.images, nil
	}
	b.mu.Unlock()
	imgs, err := b.listImages(ctx, LabelRole+"=golden,"+LabelK8sVersion, hcloud.ImageStatusAvailable)
	if err != nil {
		return nil, fmt.Errorf("list golden snapshots: %w", err)
	}
	out := map[string]*hcloud.Image{}
	for _, img := range imgs {
		v := img.Labels[LabelK8sVersion]
		if have, ok := out[v]; !ok || img.Created.After(have.Created) || img.Created.Equal(have.Created) && img.ID > have.ID {
			out[v] = img
		}
	}
	b.mu.Lock()
	b.images, b.imgAt = out, b.cfg.Clock.Now()
	b.mu.Unlock()
	return out, nil
}

// listImages lists the snapshots matching selector in the given statuses
// (any when none), every page (50 a page, the API's most), each page
// retried on its own. One page only would miss whatever lies beyond it:
// with more than 50 snapshots, the newest of a version.
func (b *Backend) listImages(ctx context.Context, selector string, status ...hcloud.ImageStatus) ([]*hcloud.Image, error) {
	var all []*hcloud.Image
	opts := hcloud.ImageListOpts{
		Type: []hcloud.ImageType{hcloud.ImageTypeSnapshot}, Status: status, Sort: []string{"created:desc"},
		ListOpts: hcloud.ListOpts{Page: 1, PerPage: 50, LabelSelector: selector},
	}
	for {
		var page []*hcloud.Image
		var resp *hcloud.Response
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var err error
			page, resp, err = b.cfg.Client.Image.List(ctx, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if resp == nil || resp.Meta.Pagination == nil || resp.Meta.Pagination.NextPage == 0 {
			return all, nil
		}
		opts.Page = resp.Meta.Pagination.NextPage
	}
}

func (b *Backend) snapshotFor(ctx context.Context, version string) (*hcloud.Image, error) {
	imgs, err := b.snapshots(ctx, false)
	if err != nil {
		return nil, err
	}
	if img, ok := imgs[version]; ok {
		return img, nil
	}
	return nil, cluster.Errorf(cluster.EINVALID, "k8s-version", "no golden snapshot for Kubernetes %s; build one with `provisioner image build`", version)
}

// serverName is derived from the member id so that a retried or resumed
// create finds the server it made instead of making a second one.
func (b *Backend) serverName(m cluster.Member) string {
	return sanitize("smek-" + b.cfg.Installation + "-" + m.ID)
}

func sanitize(s string) string {
	out := []byte(strings.ToLower(s))
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			out[i] = '-'
		}
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return string(out)
}

func flavorLabel(f cluster.Flavor) string {
	return sanitize(strings.ReplaceAll(f.String(), "/", "_"))
}

func (b *Backend) labels(m cluster.Member) map[string]string {
	return map[string]string{
		LabelInstall: b.cfg.Installation, LabelMember: sanitize(m.ID), LabelFlavor: flavorLabel(m.Flavor), LabelRole: "node",
	}
}

// compareVersions orders "v1.36.3"-like versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			fmt.Sscanf(pa[i], "%d", &x)
		}
		if i < len(pb) {
			fmt.Sscanf(pb[i], "%d", &y)
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}
