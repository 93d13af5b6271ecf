// Package sshnode simulates the machine behind a fake Hetzner server: a disk
// (a folder), an SSH server on loopback that accepts the keys the server was
// created with (public key authentication only), and a command handler for
// the few commands SMEK's bootstrap and image build run. `systemctl start
// k3s` starts a real control plane (internal/local) on the disk and plays
// the parts of k3s a control plane lacks: the node, CoreDNS, the local-path
// StorageClass, the auto-deploy manifests and a kubelet that marks pods
// running. It implements hcloudfake.Machine.
package sshnode

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
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/hcloudfake"
)

// Config says where nodes keep their disks and where the Kubernetes
// binaries are.
type Config struct {
	// Dir holds one folder per server.
	Dir string
	// KubeBin holds etcd, kube-apiserver and kube-controller-manager.
	KubeBin string
	Logger  *slog.Logger
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
}

var _ hcloudfake.Machine = (*Node)(nil)

// NewNode makes the node's disk from the image and writes what cloud-init
// would: the hostname and root's authorized_keys.
func NewNode(cfg Config, spec hcloudfake.MachineSpec) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, spec: spec, disk: filepath.Join(cfg.Dir, "servers", fmt.Sprint(spec.ServerID), "disk"),
		log: cfg.Logger.With("component", "sshnode", "server", spec.ServerID),
	}
	if err := n.Reimage(spec.ImageDir); err != nil {
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

// PowerOn boots the machine: the SSH server starts listening, then, as
// systemd does at boot, the units enabled in multi-user.target start: k3s
// when `systemctl enable k3s` was run. That part goes on after PowerOn
// returns, so k3s comes up a few seconds after SSH, as on a real server
// (Booted says when it is done).
func (n *Node) PowerOn() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sshd != nil {
		return nil
	}
	key, err := n.hostKey()
	if err != nil {
		return err
	}
	s, err := startSSHD(n, key)
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
		n.log.Warn("k3s.service failed at boot", "err", err)
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
	return errors.Join(errs...)
}

// Reimage replaces the disk by the image's contents, then does what
// cloud-init does on a first boot.
func (n *Node) Reimage(imageDir string) error {
	if err := n.PowerOff(); err != nil {
		n.log.Warn("power off before reimage", "err", err)
	}
	if err := os.RemoveAll(n.disk); err != nil {
		return fmt.Errorf("wipe disk: %w", err)
	}
	if err := os.MkdirAll(n.disk, 0o755); err != nil {
		return err
	}
	if imageDir != "" {
		if err := copyTree(imageDir, n.disk); err != nil {
			return fmt.Errorf("copy image: %w", err)
		}
	}
	return n.cloudInit()
}

// cloudInit writes the hostname, root's keys and fresh SSH host keys, like
// cloud-init on a first boot (it runs again after `cloud-init clean`).
func (n *Node) cloudInit() error {
	files := map[string][]byte{
		"/etc/hostname":                []byte(n.spec.Name + "\n"),
		"/root/.ssh/authorized_keys":   []byte(strings.Join(n.spec.AuthorizedKeys, "")),
		"/var/lib/cloud/instance/boot": []byte("done\n"),
	}
	if n.spec.UserData != "" {
		files["/var/lib/cloud/instance/user-data.txt"] = []byte(n.spec.UserData)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return err
	}
	files["/etc/ssh/ssh_host_ed25519_key"] = pem.EncodeToMemory(block)
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
