// Package k3snode simulates the machine behind a fake Hetzner server: a disk
// (a folder), an SSH server on loopback that accepts the keys the server was
// created with (public key authentication only), and a command handler for
// the few commands SMEK's bootstrap and image build run. `systemctl start
// k3s` starts a real control plane (internal/local) on the disk and plays
// the parts of k3s a control plane lacks: the node, CoreDNS, the local-path
// StorageClass, the auto-deploy manifests and a kubelet that marks pods
// running. It implements hcloudfake.Machine.
package k3snode

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/logkey"
)

// Config says where nodes keep their disks and where the Kubernetes
// binaries are.
type Config struct {
	// Dir holds one folder per server.
	Dir string
	// KubeBin holds etcd, kube-apiserver and kube-controller-manager.
	KubeBin string
	// ImageStoreBytes is the room containerd's content store has on each
	// machine's disk (default 10 GiB): an import that needs more fails as
	// a full disk does.
	ImageStoreBytes int64
	Logger          *slog.Logger
}

// Factory returns the MachineFactory that gives each fake server a Node.
func Factory(cfg Config) hcloudfake.MachineFactory {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return func(spec hcloudfake.MachineSpec) (hcloudfake.Machine, error) {
		return NewNode(cfg, spec)
	}
}

// Node is one simulated machine.
type Node struct {
	cfg  Config
	spec hcloudfake.MachineSpec
	log  *slog.Logger
	disk string // root of the simulated file system
	// images guards the containerd image store (see images.go).
	images sync.Mutex

	// mu guards everything below.
	mu    sync.Mutex
	sshd  *sshd
	k3s   *k3s
	ports map[int]*port // public ports, see nic.go
	// portAddrs remembers the loopback address of each public port.
	portAddrs map[int]string
	// boots counts power-ons, so that a boot's late work knows whether
	// the machine went off (or on again) meanwhile.
	boots int
	// booted is closed when the current boot has started the enabled
	// units (see Booted).
	booted chan struct{}

	// userData is the server's cloud-init user data as of the last
	// (re)build (see hcloudfake.Disk).
	userData string

	// staleKey is the host key the image carried; sshd answers the next
	// staleConns connections with it (cloud-init has not run yet, see
	// MachineSpec.HostKeyLag).
	staleKey   ssh.Signer
	staleConns atomic.Int32
}

var _ hcloudfake.Machine = (*Node)(nil)

// NewNode makes the node's disk from the image; cloud-init runs at its
// first boot.
func NewNode(cfg Config, spec hcloudfake.MachineSpec) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, spec: spec, disk: filepath.Join(cfg.Dir, "servers", fmt.Sprint(spec.ServerID), "disk"),
		log: cfg.Logger.With(logkey.Component, "k3snode", logkey.Server, spec.ServerID),
	}
	if err := n.Reimage(hcloudfake.Disk{ImageDir: spec.ImageDir, Inconsistent: spec.ImageInconsistent, UserData: spec.UserData}); err != nil {
		return nil, err
	}
	return n, nil
}

// path maps an absolute path of the simulated machine into the disk folder.
func (n *Node) path(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	clean := filepath.Clean(p)
	return filepath.Join(n.disk, clean), nil
}

// Disk returns the folder that holds the node's file system.
func (n *Node) Disk() string { return n.disk }

// PowerOn boots the machine: a machine id for a system that has none,
// cloud-init on a new instance's first boot, then the SSH server, then, as
// systemd does at boot, the units enabled in multi-user.target: k3s when
// `systemctl enable k3s` was run. That part goes on after PowerOn returns,
// so k3s comes up a few seconds after SSH, as on a real server (Booted
// says when it is done).
func (n *Node) PowerOn() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sshd != nil {
		return nil
	}
	if err := n.boot(); err != nil {
		return err
	}
	key, err := n.hostKey()
	if err != nil {
		return err
	}
	stale := n.staleKey
	s, err := startSSHD(n, func() ssh.Signer {
		for {
			left := n.staleConns.Load()
			if left <= 0 {
				return key
			}
			if n.staleConns.CompareAndSwap(left, left-1) {
				return stale
			}
		}
	})
	if err != nil {
		return err
	}
	n.sshd = s
	n.boots++
	n.booted = make(chan struct{})
	go n.startEnabledUnits(n.boots, n.booted)
	return nil
}

// startEnabledUnits starts k3s if it is enabled, unless the machine went
// off (or was booted again) in the meantime. A unit that fails to start
// leaves the machine up without it, as systemd does.
func (n *Node) startEnabledUnits(boot int, done chan struct{}) {
	defer close(done)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.boots != boot || n.sshd == nil || n.k3s != nil || !n.enabled("k3s.service") {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := startK3s(ctx, n)
	if err != nil {
		n.log.Warn("k3s.service failed at boot", logkey.Err, err)
		return
	}
	n.k3s = k
}

// Booted returns a channel that is closed once the current boot has
// started the enabled units (at once while the machine is off).
func (n *Node) Booted() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.booted == nil || n.sshd == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return n.booted
}

// enabled reports whether unit is enabled: systemctl enable links it into
// multi-user.target.wants.
func (n *Node) enabled(unit string) bool {
	_, err := n.readFile(wantsDir + unit)
	return err == nil
}

// PowerOff stops k3s and the SSH server; the disk stays.
func (n *Node) PowerOff() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	if n.k3s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, n.k3s.stop(ctx))
		cancel()
		n.k3s = nil
	}
	if n.sshd != nil {
		errs = append(errs, n.sshd.close())
		n.sshd = nil
	}
	for p := range n.ports {
		errs = append(errs, n.unlisten(p))
	}
	n.staleConns.Store(0)
	return errors.Join(errs...)
}

// Reimage replaces the disk by the image's contents; the next power-on is
// the new system's first boot.
func (n *Node) Reimage(d hcloudfake.Disk) error {
	if err := n.PowerOff(); err != nil {
		n.log.Warn("power off before reimage", logkey.Err, err)
	}
	if err := os.RemoveAll(n.disk); err != nil {
		return fmt.Errorf("wipe disk: %w", err)
	}
	if err := os.MkdirAll(n.disk, 0o755); err != nil {
		return err
	}
	if d.ImageDir != "" {
		if err := copyTree(d.ImageDir, n.disk); err != nil {
			return fmt.Errorf("copy image: %w", err)
		}
	}
	if d.Inconsistent {
		msg := "file system errors on /dev/sda1: the image was taken while its server was running (create_image without a shutdown)\n"
		if err := n.writeFile(inconsistentMarker, []byte(msg), 0o644); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.userData = d.UserData
	n.mu.Unlock()
	return nil
}

// inconsistentMarker stands for the damage of an image taken of a running
// server: copied with the disk into later snapshots, it makes `systemctl
// start k3s` fail (diskFault).
const inconsistentMarker = "/var/lib/hcloudfake/inconsistent-image"

// diskFault says why services fail to start on this disk, "" when they
// do not.
func (n *Node) diskFault() string {
	b, err := n.readFile(inconsistentMarker)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// boot does what a boot does before sshd is up. systemd writes a fresh
// /etc/machine-id when it is missing, empty or "uninitialized" (what
// `cloud-init clean --machine-id` leaves), so servers from one snapshot
// share the id the snapshot carries unless it was cleaned. cloud-init
// runs its per-instance part when the disk does not record this server
// as its instance (a new server, or a rebuild from an image that was
// cloud-init cleaned or made elsewhere). n.mu is held.
func (n *Node) boot() error {
	if id, _ := n.readFile("/etc/machine-id"); len(strings.TrimSpace(string(id))) == 0 || strings.TrimSpace(string(id)) == "uninitialized" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		if err := n.writeFile("/etc/machine-id", []byte(fmt.Sprintf("%x\n", b)), 0o444); err != nil {
			return err
		}
	}
	instance := fmt.Sprint(n.spec.ServerID)
	if got, err := n.readFile(instanceIDPath); err == nil && strings.TrimSpace(string(got)) == instance {
		return nil
	}
	if n.spec.HostKeyLag > 0 {
		if old, err := n.hostKey(); err == nil {
			n.staleKey = old
			n.staleConns.Store(int32(n.spec.HostKeyLag))
		}
	}
	return n.cloudInit(instance)
}

const instanceIDPath = "/var/lib/cloud/data/instance-id"

// cloudConfig is the part of a #cloud-config user data the node follows:
// host keys (cloud-init's ssh module).
type cloudConfig struct {
	SSHKeys map[string]string `json:"ssh_keys"`
}

// cloudInit writes what cloud-init writes on a new instance's first boot:
// the hostname, root's keys, the SSH host key (the ed25519 pair of the user
// data's ssh_keys, else a fresh one) and its record of the instance. n.mu
// is held.
func (n *Node) cloudInit(instance string) error {
	files := map[string][]byte{
		"/etc/hostname":                         []byte(n.spec.Name + "\n"),
		"/root/.ssh/authorized_keys":            []byte(strings.Join(n.spec.AuthorizedKeys, "")),
		"/var/lib/cloud/instance/boot":          []byte("done\n"),
		instanceIDPath:                          []byte(instance + "\n"),
		"/var/lib/cloud/instance/user-data.txt": []byte(n.userData),
	}
	var cc cloudConfig
	if strings.HasPrefix(n.userData, "#cloud-config") {
		if err := yaml.Unmarshal([]byte(n.userData), &cc); err != nil {
			return fmt.Errorf("cloud-init: user data: %w", err)
		}
	}
	var signer ssh.Signer
	if priv := cc.SSHKeys["ed25519_private"]; priv != "" {
		s, err := ssh.ParsePrivateKey([]byte(priv))
		if err != nil {
			return fmt.Errorf("cloud-init: ssh_keys.ed25519_private: %w", err)
		}
		if pub := strings.TrimSpace(cc.SSHKeys["ed25519_public"]); pub != "" && pub != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) {
			return errors.New("cloud-init: ssh_keys.ed25519_public is not the private key's")
		}
		signer = s
		files["/etc/ssh/ssh_host_ed25519_key"] = []byte(priv)
	} else {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			return err
		}
		if signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return err
		}
		files["/etc/ssh/ssh_host_ed25519_key"] = pem.EncodeToMemory(block)
	}
	files["/etc/ssh/ssh_host_ed25519_key.pub"] = ssh.MarshalAuthorizedKey(signer.PublicKey())
	for p, b := range files {
		if err := n.writeFile(p, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) hostKey() (ssh.Signer, error) {
	p, _ := n.path("/etc/ssh/ssh_host_ed25519_key")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read host key: %w", err)
	}
	return ssh.ParsePrivateKey(b)
}

func (n *Node) writeFile(p string, b []byte, mode os.FileMode) error {
	full, err := n.path(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, b, mode)
}

func (n *Node) readFile(p string) ([]byte, error) {
	full, err := n.path(p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(full)
}

// Snapshot copies the disk into dir.
func (n *Node) Snapshot(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return copyTree(n.disk, dir)
}

// Destroy powers off and deletes the disk.
func (n *Node) Destroy() error {
	err := n.PowerOff()
	return errors.Join(err, os.RemoveAll(filepath.Dir(n.disk)))
}

// SSHAddr is where the SSH server listens, "" while off.
func (n *Node) SSHAddr() string { return n.Addr(22) }

// K3sRunning reports whether the simulated k3s is up.
func (n *Node) K3sRunning() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.k3s != nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil // sockets, pipes of a running etcd: not part of a disk image
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
