// Package local is SMEK's local backend: every cluster is a real Kubernetes
// control plane (etcd, kube-apiserver and kube-controller-manager) running as
// child processes on 127.0.0.1, with its own CA and keys. There is no kubelet:
// the backend registers the Node object itself. It is how a newcomer tries
// SMEK without a cloud account, and how the tests run a real Kubernetes API.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/egress"
)

// Binaries the local backend runs.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

// ErrBinariesMissing means the Kubernetes binaries have not been built.
var ErrBinariesMissing = errors.New("kubernetes binaries missing")

// CheckBinaries reports which binaries are missing from dir, with the
// command that builds them.
func CheckBinaries(dir string) error {
	var missing []string
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not found in %s; build them with `make kube-bin` in the SMEK source tree (about 10 minutes the first time) or point --kube-bin / SMEK_KUBE_BIN at a folder that has them",
			ErrBinariesMissing, strings.Join(missing, ", "), dir)
	}
	return nil
}

// Ports are the loopback ports of one control plane. They are kept across a
// stop and start so that etcd's recorded peer URL stays valid.
type Ports struct {
	Etcd              int `json:"etcd"`
	EtcdPeer          int `json:"etcd-peer"`
	APIServer         int `json:"apiserver"`
	ControllerManager int `json:"controller-manager"`
}

// ControlPlaneConfig says how to run a control plane.
type ControlPlaneConfig struct {
	// Dir holds everything of this control plane: PKI, etcd data, logs.
	Dir string
	// BinDir holds etcd, kube-apiserver and kube-controller-manager.
	BinDir string
	// Privileged starts kube-apiserver with --allow-privileged=true.
	Privileged bool
	// AdmissionConfig is written to a file and passed with
	// --admission-control-config-file when not empty.
	AdmissionConfig []byte
	// ExtraAPIServerFlags are appended to kube-apiserver's flags.
	ExtraAPIServerFlags []string
	// Egress, when set, carries every connection kube-apiserver opens on a
	// tenant's behalf (admission webhooks, the pods and services proxy)
	// through an HTTP CONNECT proxy on a unix socket in Dir, which refuses
	// SMEK's own machine and private networks. Without it kube-apiserver
	// dials directly: for tests of the API alone.
	Egress *egress.Proxy
	// node, when set, is the network of the cluster's kubelet node:
	// kube-apiserver advertises the node's host address (where the
	// provisioner forwards it) for the kubernetes Service, reaches the
	// kubelet and pods through the egress proxy, and kube-scheduler runs.
	node nodeNet
	// ReadyTimeout bounds the wait for /readyz (default 90 s).
	ReadyTimeout time.Duration
	Logger       *slog.Logger
}

// ControlPlane is a running etcd + kube-apiserver + kube-controller-manager.
type ControlPlane struct {
	cfg   ControlPlaneConfig
	ports Ports
	procs []*process // in start order
	admin *rest.Config
	// egress is the listener of cfg.Egress for this control plane; closed
	// by Stop.
	egress net.Listener
}

// StartControlPlane starts a control plane in cfg.Dir, making its PKI on
// first use, and returns once kube-apiserver is ready.
func StartControlPlane(ctx context.Context, cfg ControlPlaneConfig) (*ControlPlane, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 90 * time.Second
	}
	if err := CheckBinaries(cfg.BinDir); err != nil {
		return nil, err
	}
	// kube-controller-manager's kubeconfig names files by path, which it
	// resolves against the kubeconfig's own folder: only absolute paths
	// mean the same to every process.
	var err error
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(cfg.Dir, "pki")
	if _, err := os.Stat(filepath.Join(pkiDir, saPub)); errors.Is(err, os.ErrNotExist) {
		if err := writePKI(pkiDir, time.Now()); err != nil {
			return nil, fmt.Errorf("make pki: %w", err)
		}
	}
	if n := cfg.node; n.Index != 0 {
		if err := writeNodePKI(pkiDir, nodeName, net.IP(n.nodeIP().AsSlice()), time.Now()); err != nil {
			return nil, fmt.Errorf("make the node's pki: %w", err)
		}
	}
	ports, err := loadOrAllocatePorts(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{cfg: cfg, ports: ports}
	if cp.admin, err = cp.adminConfig(); err != nil {
		return nil, err
	}
	if err := cp.start(ctx); err != nil {
		cp.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context) error {
	dir, pki := cp.cfg.Dir, filepath.Join(cp.cfg.Dir, "pki")
	for _, d := range []string{"logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	p := func(name string) string { return filepath.Join(pki, name) }
	etcdURL := fmt.Sprintf("https://127.0.0.1:%d", cp.ports.Etcd)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", cp.ports.EtcdPeer)
	etcdArgs := []string{
		"--name=smek", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=smek=" + peerURL,
		"--cert-file=" + p(etcdCrt), "--key-file=" + p(etcdKey),
		"--client-cert-auth", "--trusted-ca-file=" + p(caCrt),
		"--log-level=warn",
		// An ephemeral cluster does not need its writes to survive a power
		// cut; skipping fsync makes every write several times faster.
		"--unsafe-no-fsync",
		"--quota-backend-bytes=2147483648",
	}
	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--etcd-cafile=" + p(caCrt), "--etcd-certfile=" + p(etcdClient+".crt"), "--etcd-keyfile=" + p(etcdClient+".key"),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.ports.APIServer),
		"--tls-cert-file=" + p(apiserverCrt), "--tls-private-key-file=" + p(apiserverKey),
		"--client-ca-file=" + p(caCrt),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p(saPub), "--service-account-signing-key-file=" + p(saKey),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--allow-privileged=" + strconv.FormatBool(cp.cfg.Privileged),
	}
	if n := cp.cfg.node; n.Index != 0 {
		apiArgs = append(apiArgs,
			"--advertise-address="+n.hostIP().String(),
			"--endpoint-reconciler-type=lease",
			"--authorization-mode=Node,RBAC",
			"--kubelet-client-certificate="+p(apiserverKubelets+".crt"), "--kubelet-client-key="+p(apiserverKubelets+".key"),
			"--kubelet-certificate-authority="+p(caCrt),
			// The node's name does not resolve; its address is known.
			"--kubelet-preferred-address-types=InternalIP",
		)
	} else {
		apiArgs = append(apiArgs,
			"--advertise-address=127.0.0.1",
			// The kubernetes Service cannot point at a loopback address.
			"--endpoint-reconciler-type=none",
			"--authorization-mode=RBAC",
		)
	}
	if len(cp.cfg.AdmissionConfig) > 0 {
		path := filepath.Join(dir, "admission.yaml")
		if err := os.WriteFile(path, cp.cfg.AdmissionConfig, 0o600); err != nil {
			return err
		}
		apiArgs = append(apiArgs, "--admission-control-config-file="+path)
	}
	if cp.cfg.Egress != nil {
		flag, err := cp.serveEgress()
		if err != nil {
			return err
		}
		apiArgs = append(apiArgs, flag)
	}
	apiArgs = append(apiArgs, cp.cfg.ExtraAPIServerFlags...)
	kubeconfig := filepath.Join(dir, "kcm.kubeconfig")
	if err := writeClientKubeconfig(kubeconfig, cp.URL(), p(caCrt), p(kcmCert+".crt"), p(kcmCert+".key")); err != nil {
		return err
	}
	kcmArgs := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(cp.ports.ControllerManager),
		"--service-account-private-key-file=" + p(saKey), "--root-ca-file=" + p(caCrt),
		"--use-service-account-credentials=true",
		"--leader-elect=false",
	}

	for _, s := range []command{{"etcd", etcdArgs}, {"kube-apiserver", apiArgs}} {
		proc, err := startProcess(filepath.Join(cp.cfg.BinDir, s.name), s.args, filepath.Join(dir, "logs", s.name+".log"))
		if err != nil {
			return err
		}
		cp.procs = append(cp.procs, proc)
	}
	if err := cp.writePIDs(); err != nil {
		return err
	}
	if err := cp.waitReady(ctx); err != nil {
		return err
	}
	if cp.cfg.node.Index != 0 {
		// A real node: its lifecycle controller lifts the not-ready
		// taint the kubelet registers with.
		kcmArgs = append(kcmArgs, "--controllers=*,-nodeipam,-service-lb-controller,-route,-cloud-node-lifecycle")
	} else {
		// No kubelet, no cloud: the controllers that manage nodes, their
		// CIDRs and cloud load balancers have nothing to do here.
		kcmArgs = append(kcmArgs, "--controllers=*,-nodeipam,-nodelifecycle,-service-lb-controller,-route,-cloud-node-lifecycle")
	}
	later := []command{{"kube-controller-manager", kcmArgs}}
	if cp.cfg.node.Index != 0 {
		kubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
		if err := writeClientKubeconfig(kubeconfig, cp.URL(), p(caCrt), p(schedulerCert+".crt"), p(schedulerCert+".key")); err != nil {
			return err
		}
		later = append(later, command{"kube-scheduler", []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
			// Nothing needs its health endpoint: the node's pods show
			// whether it schedules.
			"--secure-port=0", "--leader-elect=false",
		}})
	}
	for _, s := range later {
		proc, err := startProcess(filepath.Join(cp.cfg.BinDir, s.name), s.args, filepath.Join(dir, "logs", s.name+".log"))
		if err != nil {
			return err
		}
		cp.procs = append(cp.procs, proc)
	}
	return cp.writePIDs()
}

// command is a binary of BinDir and its arguments.
type command struct {
	name string
	args []string
}

// waitReady polls /readyz until kube-apiserver answers 200, a process dies,
// or the timeout passes.
func (cp *ControlPlane) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, cp.cfg.ReadyTimeout)
	defer cancel()
	tlsCfg, err := rest.TLSConfigFor(cp.admin)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, p := range cp.procs {
			if err := p.exited(); err != nil {
				return fmt.Errorf("%s exited while starting: %w; last log lines:\n%s", p.name, err, p.tail(15))
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cp.URL()+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s: %w; last log lines:\n%s", cp.cfg.ReadyTimeout, ctx.Err(), cp.procs[len(cp.procs)-1].tail(15))
		case <-tick.C:
		}
	}
}

// egressSocket is the unix socket, in the control plane's folder, on which
// kube-apiserver reaches the egress proxy. A unix socket path has at most
// 107 bytes.
const egressSocket = "egress.sock"

// serveEgress listens on the control plane's egress socket, serves the
// proxy there, writes the EgressSelectorConfiguration and returns the
// kube-apiserver flag that names it.
func (cp *ControlPlane) serveEgress() (string, error) {
	sock := filepath.Join(cp.cfg.Dir, egressSocket)
	if len(sock) > 107 {
		return "", fmt.Errorf("egress socket %s: longer than a unix socket path may be; use a shorter data folder", sock)
	}
	l, err := egress.ListenUnix(sock)
	if err != nil {
		return "", err
	}
	path := filepath.Join(cp.cfg.Dir, "egress-selector.yaml")
	if err := os.WriteFile(path, egress.SelectorConfig(sock), 0o600); err != nil {
		l.Close()
		return "", err
	}
	cp.egress = l
	var allow []netip.Prefix
	if n := cp.cfg.node; n.Index != 0 {
		allow = []netip.Prefix{netip.PrefixFrom(n.nodeIP(), 32), n.podCIDR()}
	}
	go cp.cfg.Egress.ServeAllowing(l, allow)
	return "--egress-selector-config-file=" + path, nil
}

// Stop stops the processes (newest first) and keeps the data directory.
func (cp *ControlPlane) Stop(ctx context.Context) error {
	var errs []error
	if cp.egress != nil {
		cp.egress.Close()
		cp.egress = nil
	}
	for i := len(cp.procs) - 1; i >= 0; i-- {
		// kube-apiserver lingers for many seconds after SIGTERM, draining
		// requests nobody will send; it keeps no state of its own, so it and
		// the controller manager are killed at once. etcd gets time to
		// close its database cleanly.
		grace := time.Duration(0)
		if cp.procs[i].name == "etcd" {
			grace = 10 * time.Second
		}
		errs = append(errs, cp.procs[i].stop(ctx, grace))
	}
	cp.procs = nil
	os.Remove(filepath.Join(cp.cfg.Dir, pidFile))
	return errors.Join(errs...)
}

// URL is the kube-apiserver's address.
func (cp *ControlPlane) URL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", cp.ports.APIServer)
}

// Ports returns the control plane's ports.
func (cp *ControlPlane) Ports() Ports { return cp.ports }

// CAData is the PEM of the cluster CA.
func (cp *ControlPlane) CAData() []byte { return cp.admin.TLSClientConfig.CAData }

// AdminConfig is a system:masters client configuration for the provisioner.
// It must never reach a tenant.
func (cp *ControlPlane) AdminConfig() *rest.Config { return rest.CopyConfig(cp.admin) }

// AdminConfig loads the admin client configuration of the control plane in
// dir without starting anything.
func AdminConfig(dir string) (*rest.Config, error) {
	ports, err := loadPorts(dir)
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{cfg: ControlPlaneConfig{Dir: dir}, ports: ports}
	return cp.adminConfig()
}

func (cp *ControlPlane) adminConfig() (*rest.Config, error) {
	pki := filepath.Join(cp.cfg.Dir, "pki")
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(pki, name)) }
	ca, err := read(caCrt)
	if err != nil {
		return nil, err
	}
	crt, err := read(adminCert + ".crt")
	if err != nil {
		return nil, err
	}
	key, err := read(adminCert + ".key")
	if err != nil {
		return nil, err
	}
	return &rest.Config{
		Host:            cp.URL(),
		TLSClientConfig: rest.TLSClientConfig{CAData: ca, CertData: crt, KeyData: key},
		QPS:             200,
		Burst:           400,
		Timeout:         30 * time.Second,
		UserAgent:       "smek-provisioner",
	}, nil
}

const portsFile = "ports.json"

func loadPorts(dir string) (Ports, error) {
	var p Ports
	b, err := os.ReadFile(filepath.Join(dir, portsFile))
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(b, &p)
}

func loadOrAllocatePorts(dir string) (Ports, error) {
	if p, err := loadPorts(dir); err == nil {
		return p, nil
	}
	free, err := freePorts(4)
	if err != nil {
		return Ports{}, fmt.Errorf("allocate ports: %w", err)
	}
	p := Ports{Etcd: free[0], EtcdPeer: free[1], APIServer: free[2], ControllerManager: free[3]}
	b, _ := json.Marshal(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, err
	}
	return p, os.WriteFile(filepath.Join(dir, portsFile), b, 0o600)
}

// freePorts asks the kernel for n unused loopback ports. Holding all the
// listeners until every port is chosen keeps the n ports distinct.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeClientKubeconfig(path, server, ca, cert, key string) error {
	return os.WriteFile(path, []byte(kubeconfig(server, ca, cert, key)), 0o600)
}
