package hetzner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/pool"
)

// bootstrap runs on a freshly (re)built server: per-boot k3s config, start
// k3s, fetch the admin credential, wait until the cluster is ready. It
// fills d's credential fields and timings.
func (b *Backend) bootstrap(ctx context.Context, m pool.Member, srv *hcloud.Server, d *data) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	t := b.cfg.Now()
	conn, err := b.dial(ctx, srv, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	d.Timings["boot"] = b.cfg.Now().Sub(t).Milliseconds()
	t = b.cfg.Now()
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+psaConfigPath, psaConfig(m.Flavor), nil); err != nil {
		return fmt.Errorf("write pod security config: %w", err)
	}
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+k3sConfigPath, k3sConfig(srv.Name, d.IP, m.ID, m.Flavor), nil); err != nil {
		return fmt.Errorf("write k3s config: %w", err)
	}
	if err := b.startK3s(ctx, conn, m, d); err != nil {
		return err
	}
	d.Timings["bootstrap"] = b.cfg.Now().Sub(t).Milliseconds()
	return nil
}

// restartK3s starts k3s again after a power-on (SMEK starts it itself; the
// unit is not enabled) and waits for readiness.
func (b *Backend) restartK3s(ctx context.Context, m pool.Member, srv *hcloud.Server, d *data) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	conn, err := b.dial(ctx, srv, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	return b.startK3s(ctx, conn, m, d)
}

func (b *Backend) startK3s(ctx context.Context, conn *ssh.Client, m pool.Member, d *data) error {
	var stderr bytes.Buffer
	if err := runSSH(ctx, conn, "systemctl start k3s", nil, &stderr); err != nil {
		return fmt.Errorf("start k3s: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var kc bytes.Buffer
	if err := runSSH(ctx, conn, "cat "+kubeconfigK3s, nil, &kc); err != nil {
		return fmt.Errorf("read k3s kubeconfig: %w", err)
	}
	cfg, doc, err := publicKubeconfig(kc.Bytes(), d.IP)
	if err != nil {
		return err
	}
	t := b.cfg.Now()
	if err := waitReady(ctx, cfg); err != nil {
		return err
	}
	if b.cfg.Policy != nil {
		if err := b.cfg.Policy(ctx, cfg, m.Flavor); err != nil {
			return fmt.Errorf("apply tenant policy: %w", err)
		}
	}
	d.Timings["ready"] = b.cfg.Now().Sub(t).Milliseconds()
	d.APIServer, d.CA = cfg.Host, cfg.TLSClientConfig.CAData
	d.Admin = b.seal.seal(doc, m.ID)
	return nil
}

// publicKubeconfig points k3s's admin kubeconfig (server 127.0.0.1) at the
// server's public address, keeping the port.
func publicKubeconfig(raw []byte, ip string) (*rest.Config, []byte, error) {
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("parse k3s kubeconfig: %w", err)
	}
	for _, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return nil, nil, fmt.Errorf("parse k3s server url: %w", err)
		}
		u.Host = net.JoinHostPort(ip, u.Port())
		c.Server = u.String()
	}
	doc, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("k3s kubeconfig: %w", err)
	}
	return cfg, doc, nil
}

func (b *Backend) adminConfig(m pool.Member, d data) (*rest.Config, error) {
	if len(d.Admin) == 0 {
		return nil, fmt.Errorf("member %s has no admin credential", m.ID)
	}
	doc, err := b.seal.open(d.Admin, m.ID)
	if err != nil {
		return nil, err
	}
	return clientcmd.RESTConfigFromKubeConfig(doc)
}

// dial connects to the server's SSH as root with the project key, retrying
// while it boots. The host key must be the one SMEK gave the server through
// cloud-init at its (re)build (d.HostKey): any other, such as the old key a
// system from a snapshot presents until cloud-init has replaced it, is
// refused before authenticating, and the dial tries again until ctx ends.
// Only a member recorded before keys were pinned (no d.HostKey) trusts the
// first key it sees.
func (b *Backend) dial(ctx context.Context, srv *hcloud.Server, d *data) (*ssh.Client, error) {
	addr, err := b.cfg.SSHAddr(ctx, srv)
	if err != nil {
		return nil, err
	}
	var refused string // the last host key refused
	hostKey := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		if d.HostKey == "" {
			d.HostKey = got
			return nil
		}
		if d.HostKey != got {
			refused = got
			return errHostKeyMismatch
		}
		return nil
	}
	cfg := &ssh.ClientConfig{
		User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(b.cfg.Signer)},
		HostKeyCallback: hostKey, Timeout: 10 * time.Second,
	}
	if strings.HasPrefix(d.HostKey, ssh.KeyAlgoED25519+" ") {
		cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoED25519}
	}
	delay := 200 * time.Millisecond
	for {
		if addr == "" || strings.HasSuffix(addr, ":") {
			if addr, err = b.cfg.SSHAddr(ctx, srv); err != nil {
				return nil, err
			}
		}
		var dialer net.Dialer
		nc, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			// The handshake gets cfg.Timeout and no longer than ctx: a
			// connection that hears nothing (its SYN dropped by a firewall
			// on the way, a half-open peer) must not hold the dial.
			deadline := time.Now().Add(cfg.Timeout)
			if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
				deadline = d
			}
			_ = nc.SetDeadline(deadline)
			stop := context.AfterFunc(ctx, func() { nc.Close() })
			c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
			stop()
			if err == nil {
				_ = nc.SetDeadline(time.Time{})
				return ssh.NewClient(c, chans, reqs), nil
			}
			nc.Close()
		}
		select {
		case <-ctx.Done():
			if refused != "" {
				return nil, fmt.Errorf("ssh to server %d: %w: it presents %s, not the key given at its (re)build %s (cloud-init has not installed it, or it is not the server)", srv.ID, errHostKeyMismatch, refused, d.HostKey)
			}
			return nil, fmt.Errorf("ssh to server %d: %w", srv.ID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*time.Second, delay*2)
		addr = ""
	}
}

var errHostKeyMismatch = errors.New("ssh host key mismatch")

// runSSH runs one command, feeding stdin, collecting stdout into out. The
// session is closed when ctx ends, so a caller that gives up does not wait
// for a slow command.
func runSSH(ctx context.Context, c *ssh.Client, cmd string, stdin []byte, out *bytes.Buffer) error {
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var stderr bytes.Buffer
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	if out != nil {
		s.Stdout = out
	}
	s.Stderr = &stderr
	if err := s.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", strings.Fields(cmd)[0], ctx.Err())
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", strings.Fields(cmd)[0], err, msg)
		}
		return fmt.Errorf("%s: %w", strings.Fields(cmd)[0], err)
	}
	return nil
}
