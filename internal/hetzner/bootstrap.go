package hetzner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/rest"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
)

// bootstrap runs on a freshly (re)built server: per-boot k3s config, start
// k3s, fetch the admin credential, wait until the cluster is ready. It
// fills d's credential fields and timings.
func (b *Backend) bootstrap(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	t := b.cfg.Clock.Now()
	conn, err := b.dial(ctx, srv, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	d.Timings["boot"] = b.cfg.Clock.Now().Sub(t).Milliseconds()
	t = b.cfg.Clock.Now()
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+psaConfigPath, psaConfig(m.Flavor), nil); err != nil {
		return fmt.Errorf("write pod security config: %w", err)
	}
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+k3sConfigPath, k3sConfig(srv.Name, d.IP, m.ID, m.Flavor), nil); err != nil {
		return fmt.Errorf("write k3s config: %w", err)
	}
	if err := b.writeRegistries(ctx, conn); err != nil {
		return err
	}
	manifest, err := PolicyManifest(m.Flavor)
	if err != nil {
		return err
	}
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+policyManifest, manifest, nil); err != nil {
		return fmt.Errorf("write policy manifest: %w", err)
	}
	if err := b.startK3s(ctx, conn, m, srv, d); err != nil {
		return err
	}
	d.Timings["bootstrap"] = b.cfg.Clock.Now().Sub(t).Milliseconds()
	return nil
}

// writeRegistries writes k3s's registries.yaml for the configured
// mirrors before k3s starts, or removes one the disk may carry (a
// snapshot made by hand, a member bootstrapped under other flags) when
// there are none: k3s reads the file at every start.
func (b *Backend) writeRegistries(ctx context.Context, conn *ssh.Client) error {
	doc, err := registriesYAML(b.cfg.RegistryMirrors)
	if err != nil {
		return err
	}
	if doc == nil {
		if err := runSSH(ctx, conn, "rm -f "+registriesPath, nil, nil); err != nil {
			return fmt.Errorf("remove registries.yaml: %w", err)
		}
		return nil
	}
	if err := runSSH(ctx, conn, "install -D -m 0600 /dev/stdin "+registriesPath, doc, nil); err != nil {
		return fmt.Errorf("write registries.yaml: %w", err)
	}
	return nil
}

// restartK3s brings k3s back after a power-on and waits for readiness.
// k3s is enabled and starts at boot; `systemctl start` waits for that
// start (and starts it on a member bootstrapped before k3s was enabled).
// Nothing is read back from the node: the admin client is made from the
// credential sealed at bootstrap, with the CA pinned then.
func (b *Backend) restartK3s(ctx context.Context, m cluster.Member, srv *hcloud.Server, d *data) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	conn, err := b.dial(ctx, srv, d)
	if err != nil {
		return err
	}
	defer conn.Close()
	var stderr bytes.Buffer
	if err := runSSH(ctx, conn, "systemctl start k3s", nil, &stderr); err != nil {
		return fmt.Errorf("start k3s: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if d.APIServer, err = b.apiServer(ctx, srv); err != nil {
		return err
	}
	cfg, err := b.adminConfig(m, *d)
	if err != nil {
		return err
	}
	return b.ready(ctx, m, cfg, d)
}

// startK3s starts k3s on a freshly (re)built server, takes its admin
// credential from k3s.yaml (the only time SMEK reads it: no tenant has had
// the server yet), waits for readiness, seals the credential and pins the
// CA, and enables k3s so that it comes back by itself after a reboot.
func (b *Backend) startK3s(ctx context.Context, conn *ssh.Client, m cluster.Member, srv *hcloud.Server, d *data) error {
	var stderr bytes.Buffer
	if err := runSSH(ctx, conn, "systemctl start k3s", nil, &stderr); err != nil {
		return fmt.Errorf("start k3s: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var kc bytes.Buffer
	if err := runSSH(ctx, conn, "cat "+kubeconfigK3s, nil, &kc); err != nil {
		return fmt.Errorf("read k3s kubeconfig: %w", err)
	}
	addr, err := b.apiAddr(ctx, srv)
	if err != nil {
		return err
	}
	cfg, sealed, err := publicKubeconfig(kc.Bytes(), addr)
	if err != nil {
		return err
	}
	if err := b.ready(ctx, m, cfg, d); err != nil {
		return err
	}
	d.APIServer, d.CA = cfg.Host, cfg.TLSClientConfig.CAData
	d.Admin = b.seal.seal(sealed, m.ID)
	// The member's admin client from now on (admins): the label's
	// request opens the connection its claim will find open.
	a, err := kube.NewAdmin(cfg)
	if err != nil {
		return err
	}
	a = b.admins.put(m.ID, keyOf(*d), a)
	if m.ReservedID != "" {
		if err := a.LabelNodes(ctx, m.ReservedID); err != nil {
			return err
		}
	}
	stderr.Reset()
	if err := runSSH(ctx, conn, "systemctl enable k3s", nil, &stderr); err != nil {
		return fmt.Errorf("enable k3s: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// ready waits until the cluster can be handed out and applies the tenant
// policy.
func (b *Backend) ready(ctx context.Context, m cluster.Member, cfg *rest.Config, d *data) error {
	t := b.cfg.Clock.Now()
	if err := waitReady(ctx, cfg); err != nil {
		return err
	}
	if b.cfg.Policy != nil {
		if err := b.cfg.Policy(ctx, cfg, m.Flavor); err != nil {
			return fmt.Errorf("apply tenant policy: %w", err)
		}
	}
	if d.Timings == nil {
		d.Timings = map[string]int64{}
	}
	d.Timings["ready"] = b.cfg.Clock.Now().Sub(t).Milliseconds()
	return nil
}

// publicKubeconfig checks k3s's admin kubeconfig (parseAdminKubeconfig:
// inline certificates only) and returns the admin client for the API at
// addr (the server's public host:port) and the kubeconfig to seal, written
// afresh from the checked credential.
func publicKubeconfig(raw []byte, addr string) (*rest.Config, []byte, error) {
	cred, err := parseAdminKubeconfig(raw)
	if err != nil {
		return nil, nil, err
	}
	server := "https://" + addr
	doc, err := cred.kubeconfig(server)
	if err != nil {
		return nil, nil, fmt.Errorf("write admin kubeconfig: %w", err)
	}
	return cred.restConfig(server), doc, nil
}

// apiAddr returns host:port of the server's Kubernetes API now.
func (b *Backend) apiAddr(ctx context.Context, srv *hcloud.Server) (string, error) {
	addr, err := b.cfg.APIAddr(ctx, srv)
	if err != nil {
		return "", err
	}
	if addr == "" || strings.HasSuffix(addr, ":") {
		return "", fmt.Errorf("server %d: the kubernetes api does not listen", srv.ID)
	}
	return addr, nil
}

// apiServer returns the URL of the server's Kubernetes API now.
func (b *Backend) apiServer(ctx context.Context, srv *hcloud.Server) (string, error) {
	addr, err := b.apiAddr(ctx, srv)
	if err != nil {
		return "", err
	}
	return "https://" + addr, nil
}

// adminConfig opens the member's sealed admin credential, checks it as at
// bootstrap and against the CA pinned then, and returns the admin client
// for the API address recorded in d.
func (b *Backend) adminConfig(m cluster.Member, d data) (*rest.Config, error) {
	if len(d.Admin) == 0 {
		return nil, fmt.Errorf("member %s has no admin credential", m.ID)
	}
	doc, err := b.seal.open(d.Admin, m.ID)
	if err != nil {
		return nil, err
	}
	cred, err := parseAdminKubeconfig(doc)
	if err != nil {
		return nil, fmt.Errorf("sealed admin credential of member %s: %w", m.ID, err)
	}
	if len(d.CA) == 0 || !bytes.Equal(cred.CA, d.CA) {
		return nil, fmt.Errorf("sealed admin credential of member %s: its CA is not the one pinned at bootstrap", m.ID)
	}
	if d.APIServer == "" {
		return nil, fmt.Errorf("member %s has no api server address", m.ID)
	}
	return cred.restConfig(d.APIServer), nil
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
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	var w io.Writer
	if out != nil {
		w = out
	}
	return streamSSH(ctx, c, cmd, in, w)
}

// streamSSH is runSSH with a stream for stdin (an image archive of
// gigabytes, say) and any writer for stdout; either may be nil.
func streamSSH(ctx context.Context, c *ssh.Client, cmd string, stdin io.Reader, stdout io.Writer) error {
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var stderr bytes.Buffer
	s.Stdin, s.Stdout = stdin, stdout
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
