package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/egress"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/kube/packaged"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/pool"
	"github.com/smek/action/internal/registrymirror"
)

// Version is the Kubernetes version that `make kube-bin` builds.
const Version = "1.36.3"

// nodeName is the single node every local cluster has.
const nodeName = "smek-node"

// Config configures the local backend.
type Config struct {
	// Dir holds one folder per control plane.
	Dir string
	// BinDir holds the Kubernetes binaries.
	BinDir string
	// EgressAllow are networks the tenants' API servers may reach although
	// the egress proxy refuses them by default (this machine, private and
	// link-local networks): an operator's webhook host on the LAN, say.
	EgressAllow []netip.Prefix
	// Nodes gives every cluster a kubelet node that runs pods (see
	// CheckNodeSupport for what the machine needs). Without it a cluster
	// is a control plane whose Node object the backend registers itself.
	Nodes bool
	// RegistryMirrors are the operator's registry mirrors: a node's
	// containerd tries a registry's after the backend's own image mirror
	// and before the registry itself.
	RegistryMirrors []registrymirror.Mirror
	// Busybox is the static busybox the preloaded images are made of
	// (default /bin/busybox, from Debian's busybox-static).
	Busybox string
	Logger  *slog.Logger
}

// Backend runs each pool member as a control plane on this machine.
type Backend struct {
	cfg Config
	log *slog.Logger
	// egress carries what the tenants' API servers dial on their behalf;
	// one proxy, one socket per control plane.
	egress *egress.Proxy

	mu sync.Mutex
	// running holds the control planes this process started, by member id.
	running map[string]*member
	// niceDenied says once that ready members keep their boot priority.
	niceDenied sync.Once
	// mirror serves the nodes' preloaded images (with Config.Nodes).
	mirror *mirror
}

type member struct {
	cp *ControlPlane
	// node is the member's kubelet node (with Config.Nodes).
	node  *Node
	admin *kube.Admin
	// stopGrants ends the goroutine that grants the tenant the custom
	// resources of its CRDs; grantsDone is closed when it has returned.
	stopGrants context.CancelFunc
	grantsDone chan struct{}
}

// stop ends the member's goroutine and processes (keeping its data).
func (m *member) stop(ctx context.Context) error {
	m.stopGrants()
	<-m.grantsDone
	var errs []error
	if m.node != nil {
		errs = append(errs, m.node.Stop(ctx))
	}
	return errors.Join(append(errs, m.cp.Stop(ctx))...)
}

var (
	_ pool.Backend    = (*Backend)(nil)
	_ pool.Resumer    = (*Backend)(nil)
	_ pool.Reconciler = (*Backend)(nil)
)

// New returns the local backend. It fails, naming the command that builds
// them, when the Kubernetes binaries are missing.
func New(cfg Config) (*Backend, error) {
	if err := CheckBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The control planes get absolute paths: the kubeconfig files they are
	// given resolve relative paths against their own folder, not ours.
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	log := cfg.Logger.With(logkey.Component, "local")
	if cfg.Busybox == "" {
		cfg.Busybox = "/bin/busybox"
	}
	b := &Backend{cfg: cfg, log: log, running: map[string]*member{}}
	if cfg.Nodes {
		if err := CheckNodeSupport(cfg.BinDir); err != nil {
			return nil, err
		}
		if b.mirror, err = newMirror(cfg.Busybox, filepath.Join(cfg.BinDir, "local-path-provisioner"), filepath.Join(cfg.BinDir, "coredns")); err != nil {
			return nil, err
		}
	}
	if b.egress, err = egress.New(egress.Config{Allow: cfg.EgressAllow, Logger: log.With(logkey.Component, "egress")}); err != nil {
		return nil, err
	}
	return b, nil
}

// Nodes reports whether the backend's clusters have a kubelet node that
// runs pods.
func (b *Backend) Nodes() bool { return b.cfg.Nodes }

// Name implements pool.Backend.
func (b *Backend) Name() string { return "local" }

// Versions implements pool.Backend: the one version the binaries are.
func (b *Backend) Versions(context.Context) ([]string, error) { return []string{Version}, nil }

// data is what the backend stores with a member.
type data struct {
	Dir       string `json:"dir"`
	APIServer string `json:"api-server"`
	// TimingsMS are the phases of the provision, in milliseconds.
	TimingsMS map[string]int64 `json:"timings-ms,omitempty"`
}

var _ pool.PhaseTimer = (*Backend)(nil)

// PhaseTimings implements pool.PhaseTimer: how long starting the control
// plane, applying the tenant policy, registering the node and waiting for
// the controllers took.
func (b *Backend) PhaseTimings(raw []byte) map[string]time.Duration {
	var d data
	if json.Unmarshal(raw, &d) != nil || len(d.TimingsMS) == 0 {
		return nil
	}
	out := make(map[string]time.Duration, len(d.TimingsMS))
	for k, v := range d.TimingsMS {
		out[k] = time.Duration(v) * time.Millisecond
	}
	return out
}

// withAPIServer returns the member's data with a new API address, keeping
// the provision's timings.
func withAPIServer(old []byte, dir, apiServer string) ([]byte, error) {
	var d data
	json.Unmarshal(old, &d) // a member without data gets fresh data
	d.Dir, d.APIServer = dir, apiServer
	return json.Marshal(d)
}

func (b *Backend) dir(m cluster.Member) string { return filepath.Join(b.cfg.Dir, m.ID) }

// Provision implements pool.Backend: start a control plane with the tenant
// policy in force, register the node and wait for the controllers.
func (b *Backend) Provision(ctx context.Context, m cluster.Member) ([]byte, error) {
	if m.Flavor.K8sVersion != Version {
		return nil, fmt.Errorf("local backend runs Kubernetes %s, not %s", Version, m.Flavor.K8sVersion)
	}
	timings := map[string]int64{}
	phase := func(name string, start time.Time) { timings[name] = time.Since(start).Milliseconds() }
	start := time.Now()
	mem, err := b.startMember(ctx, m)
	if err != nil {
		return nil, err
	}
	phase("control-plane", start)
	start = time.Now()
	opts := policy.Options{Privileged: m.Flavor.Privileged, LocalPathStorageClass: true}
	if err := policy.Apply(ctx, mem.cp.AdminConfig(), opts); err != nil {
		return nil, fmt.Errorf("apply tenant policy: %w", err)
	}
	phase("policy", start)
	if mem.node != nil {
		// k3s's packaged local storage and cluster DNS, as on hetzner.
		start = time.Now()
		if err := kube.ApplyManifest(ctx, mem.cp.AdminConfig(), "smek", packaged.LocalStorage(packaged.LocalStoragePath, "")); err != nil {
			return nil, fmt.Errorf("apply local-storage: %w", err)
		}
		if err := kube.ApplyManifest(ctx, mem.cp.AdminConfig(), "smek", corednsManifest()); err != nil {
			return nil, fmt.Errorf("apply coredns: %w", err)
		}
		phase("addons", start)
	}
	start = time.Now()
	if mem.node != nil {
		// A fresh node has no status of an earlier run.
		if err := mem.waitNode(ctx, time.Time{}); err != nil {
			return nil, err
		}
	} else {
		labels := nodeLabels(m)
		labels["kubernetes.io/hostname"], labels["kubernetes.io/os"], labels["kubernetes.io/arch"] = nodeName, "linux", "amd64"
		if err := mem.admin.RegisterNode(ctx, nodeName, labels); err != nil {
			return nil, err
		}
	}
	phase("node", start)
	start = time.Now()
	if err := mem.admin.WaitServiceAccount(ctx); err != nil {
		return nil, err
	}
	if mem.node != nil {
		for _, d := range []string{"local-path-provisioner", "coredns"} {
			if err := mem.admin.WaitDeploymentAvailable(ctx, "kube-system", d); err != nil {
				return nil, err
			}
		}
	}
	phase("controllers", start)
	b.prioritize(m, mem)
	return json.Marshal(data{Dir: b.dir(m), APIServer: mem.cp.URL(), TimingsMS: timings})
}

// prioritize raises a member that is ready from the boot priority its
// processes started at to the provisioner's: a claim, and then the
// tenant, are not slowed by the pool's boots.
func (b *Backend) prioritize(m cluster.Member, mem *member) {
	err := mem.cp.Prioritize()
	switch {
	case errors.Is(err, ErrNiceDenied):
		b.niceDenied.Do(func() {
			b.log.Info("ready members keep the boot priority (nice +10): the provisioner may not raise it", logkey.Err, err)
		})
	case err != nil:
		b.log.Warn("raise a ready member to the provisioner's priority", logkey.Member, m.ID, logkey.Err, err)
	}
}

// nodeLabels are the labels the member's node registers with.
func nodeLabels(m cluster.Member) map[string]string {
	labels := map[string]string{"node.kubernetes.io/instance-type": m.Flavor.Size}
	if m.ReservedID != "" {
		// The id of the cluster that will claim the member: the claim
		// does not wait for the label.
		labels[kube.NodeLabel] = string(m.ReservedID)
	}
	return labels
}

func (b *Backend) startMember(ctx context.Context, m cluster.Member) (*member, error) {
	opts := policy.Options{Privileged: m.Flavor.Privileged, LocalPathStorageClass: true}
	cfg := ControlPlaneConfig{
		Dir:                 b.dir(m),
		BinDir:              b.cfg.BinDir,
		Privileged:          m.Flavor.Privileged,
		AdmissionConfig:     policy.AdmissionConfig(opts),
		ExtraAPIServerFlags: policy.APIServerFlags(opts),
		Egress:              b.egress,
		Logger:              b.log,
	}
	if b.cfg.Nodes {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, err
		}
		var err error
		if cfg.node, err = nodeNetFor(cfg.Dir); err != nil {
			return nil, err
		}
	}
	cp, err := StartControlPlane(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var node *Node
	if b.cfg.Nodes {
		node, err = StartNode(ctx, NodeConfig{
			Dir: cp.cfg.Dir, BinDir: b.cfg.BinDir, Name: nodeName, Labels: nodeLabels(m),
			APIPort: cp.ports.APIServer, Mirror: b.mirror, RegistryMirrors: b.cfg.RegistryMirrors, Logger: b.log,
		}, cfg.node)
		if err != nil {
			cp.Stop(ctx)
			return nil, fmt.Errorf("start node: %w", err)
		}
	}
	admin, err := kube.NewAdmin(cp.AdminConfig())
	if err != nil {
		if node != nil {
			node.Stop(ctx)
		}
		cp.Stop(ctx)
		return nil, err
	}
	// RBAC without wildcards cannot name custom resources before their
	// CRDs exist: a watch grants them as the tenant creates CRDs, for as
	// long as the control plane runs.
	grantCtx, stopGrants := context.WithCancel(context.WithoutCancel(ctx))
	mem := &member{cp: cp, node: node, admin: admin, stopGrants: stopGrants, grantsDone: make(chan struct{})}
	go func() {
		defer close(mem.grantsDone)
		if node != nil {
			lbDone := make(chan struct{})
			go func() {
				defer close(lbDone)
				serveLoadBalancers(grantCtx, admin.Clientset(), node.net.nodeIP(), b.log.With(logkey.Member, m.ID))
			}()
			defer func() { <-lbDone }()
		}
		if err := policy.GrantCustomResources(grantCtx, cp.AdminConfig(), b.log.With(logkey.Member, m.ID)); err != nil && grantCtx.Err() == nil {
			b.log.Warn("grant custom resources", logkey.Member, m.ID, logkey.Err, err)
		}
	}()
	b.mu.Lock()
	b.running[m.ID] = mem
	b.mu.Unlock()
	return mem, nil
}

// waitNode waits until the member's node is Ready, as posted since, and
// ends early, with the reason, when one of its processes exits.
func (mem *member) waitNode(ctx context.Context, since time.Time) error {
	waitCtx, cancel := context.WithCancelCause(ctx)
	mem.node.watch(waitCtx, cancel)
	err := mem.admin.WaitNodeReady(waitCtx, nodeName, since)
	cancel(nil)
	if cause := context.Cause(waitCtx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if err != nil {
		return fmt.Errorf("node: %w; last kubelet log lines:\n%s", err, mem.node.tail("kubelet", 15))
	}
	return nil
}

func (b *Backend) member(m cluster.Member) (*member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	mem := b.running[m.ID]
	if mem == nil {
		return nil, fmt.Errorf("control plane of %s is not running", m.ID)
	}
	return mem, nil
}

// Claim implements pool.Backend.
func (b *Backend) Claim(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	mem, err := b.member(m)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return mem.admin.Claim(ctx, c, m.ReservedID == c.ID)
}

// Credential implements pool.Backend.
func (b *Backend) Credential(ctx context.Context, m cluster.Member, c cluster.Cluster) (cluster.Kubeconfig, error) {
	mem, err := b.member(m)
	if err != nil {
		return cluster.Kubeconfig{}, err
	}
	return mem.admin.Credential(ctx, c)
}

// Stop implements pool.Backend: the processes end, the data stays.
func (b *Backend) Stop(ctx context.Context, m cluster.Member) error {
	b.mu.Lock()
	mem := b.running[m.ID]
	delete(b.running, m.ID)
	b.mu.Unlock()
	if mem == nil {
		KillStale(b.dir(m))
		if n, ok := loadNodeNet(b.dir(m)); ok {
			return killNode(n)
		}
		return nil
	}
	return mem.stop(ctx)
}

// Start implements pool.Backend: the control plane runs again, and the
// node, if the member has one, is Ready.
func (b *Backend) Start(ctx context.Context, m cluster.Member) ([]byte, error) {
	started := time.Now()
	mem, err := b.startMember(ctx, m)
	if err != nil {
		return nil, err
	}
	if mem.node != nil {
		if err := mem.waitNode(ctx, started); err != nil {
			b.Stop(context.WithoutCancel(ctx), m)
			return nil, err
		}
	}
	b.prioritize(m, mem)
	return withAPIServer(m.Data, b.dir(m), mem.cp.URL())
}

// Resume implements pool.Resumer: after a restart of the provisioner, bring
// back the control planes that should run.
func (b *Backend) Resume(ctx context.Context, m cluster.Member) ([]byte, error) {
	if _, err := b.member(m); err == nil {
		return m.Data, nil
	}
	KillStale(b.dir(m))
	return b.Start(ctx, m)
}

// Release implements pool.Backend. A local control plane that served a
// tenant is never reused: it is destroyed and the pool starts a fresh one.
func (b *Backend) Release(ctx context.Context, m cluster.Member) (bool, []byte, error) {
	return false, nil, b.Destroy(ctx, m)
}

// Destroy implements pool.Backend: kill the processes (their data is about
// to go, so there is nothing to shut down gracefully) and remove the folder.
func (b *Backend) Destroy(ctx context.Context, m cluster.Member) error {
	b.mu.Lock()
	mem := b.running[m.ID]
	delete(b.running, m.ID)
	b.mu.Unlock()
	if mem != nil {
		mem.stopGrants()
		<-mem.grantsDone
		if mem.node != nil {
			mem.node.Stop(ctx)
		}
		for _, p := range mem.cp.procs {
			p.stop(ctx, 0)
		}
	}
	KillStale(b.dir(m))
	if n, ok := loadNodeNet(b.dir(m)); ok {
		if err := destroyNode(n); err != nil {
			return fmt.Errorf("remove the node of %s: %w", m.ID, err)
		}
	}
	if err := os.RemoveAll(b.dir(m)); err != nil {
		return fmt.Errorf("remove %s: %w", b.dir(m), err)
	}
	return nil
}

// Reconcile implements pool.Reconciler: folders (and processes) of control
// planes the database does not know, or knows as deleted, are orphans of a
// crash and are removed. A missing folder is no ghost here: Resume starts
// such a member again, so Reconcile reports none.
func (b *Backend) Reconcile(ctx context.Context, known []cluster.Member) ([]string, error) {
	keep := map[string]bool{}
	for _, m := range known {
		if m.State != cluster.MemberDeleted {
			keep[m.ID] = true
		}
	}
	entries, err := os.ReadDir(b.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || keep[e.Name()] || !strings.HasPrefix(e.Name(), "s-") {
			continue
		}
		dir := filepath.Join(b.cfg.Dir, e.Name())
		n := KillStale(dir)
		b.log.Info("removing orphaned control plane", "dir", dir, "killed", n)
		if node, ok := loadNodeNet(dir); ok && node.owner() == dir {
			errs = append(errs, destroyNode(node))
		}
		errs = append(errs, os.RemoveAll(dir))
	}
	// Nodes whose folder is gone: of this backend, or of any process that
	// ended before removing its node.
	for _, n := range hostNodes() {
		owner := n.owner()
		if _, err := os.Stat(owner); owner != "" && err == nil {
			continue
		}
		if owner == "" && !n.orphanedLongAgo() {
			continue // being created right now
		}
		b.log.Info("removing orphaned node", "node", n.name(), "dir", owner)
		errs = append(errs, destroyNode(n))
	}
	return nil, errors.Join(errs...)
}

// Close stops every control plane this process runs, keeping their data:
// the server calls it on exit, and Resume brings them back at the next start.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	members := b.running
	b.running = map[string]*member{}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, mem := range members {
		wg.Go(func() { mem.stop(ctx) })
	}
	wg.Wait()
	return nil
}

var _ pool.HealthChecker = (*Backend)(nil)

// Healthy implements pool.HealthChecker: the member's control plane runs
// in this process and its kube-apiserver answers /readyz.
func (b *Backend) Healthy(ctx context.Context, m cluster.Member) error {
	mem, err := b.member(m)
	if err != nil {
		return err
	}
	if _, err := mem.admin.Clientset().Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx); err != nil {
		return fmt.Errorf("readyz of %s: %w", mem.cp.URL(), err)
	}
	return nil
}

var _ pool.Revoker = (*Backend)(nil)

// Revoke implements pool.Revoker (see kube.Admin.Revoke).
func (b *Backend) Revoke(ctx context.Context, m cluster.Member) error {
	mem, err := b.member(m)
	if err != nil {
		return err
	}
	return mem.admin.Revoke(ctx)
}

// RemoveNodes takes the nodes of every cluster folder under dir off the
// host (processes, cgroups, namespaces, firewall and network), keeping the
// folders: for tests and tools that are done with a data folder whose
// server has stopped.
func RemoveNodes(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range hostNodes() {
		if owner := n.owner(); owner != "" && strings.HasPrefix(owner, dir+string(filepath.Separator)) {
			errs = append(errs, destroyNode(n))
		}
	}
	return errors.Join(errs...)
}
