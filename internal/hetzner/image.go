package hetzner

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
)

// ImageConfig says how to build a golden snapshot.
type ImageConfig struct {
	// K3sVersion is a k3s release, e.g. v1.36.3+k3s1.
	K3sVersion string
	// BaseImage is the system image the builder starts from.
	BaseImage  string
	ServerType string
	Location   string
	// Manifests are installed as k3s auto-deploy manifests (the tenant
	// policy bundle), by file name.
	Manifests map[string][]byte
}

var k3sVersionRE = regexp.MustCompile(`^v(\d+\.\d+\.\d+)\+k3s(\d+)$`)

// K8sVersion returns the Kubernetes version of a k3s release
// ("v1.36.3+k3s1" → "1.36.3").
func K8sVersion(k3s string) (string, error) {
	m := k3sVersionRE.FindStringSubmatch(k3s)
	if m == nil {
		return "", fmt.Errorf("k3s version %q is not like v1.36.3+k3s1", k3s)
	}
	return m[1], nil
}

// BuildImage makes a golden snapshot: a builder server from the base
// image, k3s installed but never started (so every server built from the
// snapshot makes a fresh CA, certificates and token at its first start),
// the airgap images, SMEK's node files, cloud-init cleaned (its logs and
// /etc/machine-id too, so that every server from the snapshot makes its
// own machine id), the disk synced, the server shut down and waited for
// until it is off (powered off when it does not go off in time: an image
// of a running server may be unreadable, says the API), and snapshotted
// with labels. The builder is deleted at the end, also when a step fails.
func (b *Backend) BuildImage(ctx context.Context, ic ImageConfig) (img *hcloud.Image, err error) {
	k8s, err := K8sVersion(ic.K3sVersion)
	if err != nil {
		return nil, err
	}
	if ic.BaseImage == "" {
		ic.BaseImage = "ubuntu-24.04"
	}
	if ic.ServerType == "" {
		ic.ServerType = "ccx13"
	}
	if ic.Location == "" {
		ic.Location = b.cfg.Locations[0]
	}
	key, err := b.ensureSSHKey(ctx)
	if err != nil {
		return nil, err
	}
	hk, err := randomHostKey()
	if err != nil {
		return nil, err
	}
	labelVersion := strings.ReplaceAll(ic.K3sVersion, "+", "-")
	name := sanitize("smek-builder-" + labelVersion + "-" + strings.ToLower(rand.Text()[:6]))
	var res hcloud.ServerCreateResult
	err = b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		res, resp, err = b.cfg.Client.Server.Create(ctx, hcloud.ServerCreateOpts{
			Name: name, ServerType: &hcloud.ServerType{Name: ic.ServerType}, Image: &hcloud.Image{Name: ic.BaseImage},
			Location: &hcloud.Location{Name: ic.Location}, SSHKeys: []*hcloud.SSHKey{key}, UserData: hk.userData,
			Labels: map[string]string{LabelInstall: b.cfg.Installation, LabelRole: "builder", LabelK3sVersion: labelVersion},
		})
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("create builder: %w", err)
	}
	srv := res.Server
	defer func() {
		if derr := b.delete(context.WithoutCancel(ctx), srv); derr != nil {
			err = fmt.Errorf("%w (and delete builder %d: %v)", err, srv.ID, derr)
		}
	}()
	if err := b.watch.wait(ctx, b.cfg.ExpectCreate, append([]*hcloud.Action{res.Action}, res.NextActions...)...); err != nil {
		return nil, fmt.Errorf("create builder: %w", err)
	}
	d := &data{HostKey: hk.public}
	ctxSSH, cancel := context.WithTimeout(ctx, b.cfg.ReadyTimeout)
	defer cancel()
	conn, err := b.dial(ctxSSH, srv, d)
	if err != nil {
		return nil, err
	}
	if err := installNodeFiles(ctx, conn, ic); err != nil {
		conn.Close()
		return nil, err
	}
	if err := runSSH(ctx, conn, "sync", nil, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("image build: sync: %w", err)
	}
	conn.Close()
	if err := b.shutdown(ctx, srv); err != nil {
		return nil, fmt.Errorf("shut down builder: %w", err)
	}
	var ir hcloud.ServerCreateImageResult
	err = b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		ir, resp, err = b.cfg.Client.Server.CreateImage(ctx, srv, &hcloud.ServerCreateImageOpts{
			Type: hcloud.ImageTypeSnapshot, Description: hcloud.Ptr("SMEK golden image, k3s " + ic.K3sVersion),
			Labels: map[string]string{LabelInstall: b.cfg.Installation, LabelRole: "golden", LabelK3sVersion: labelVersion, LabelK8sVersion: k8s},
		})
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	if err := b.watch.wait(ctx, b.cfg.ExpectRebuild, ir.Action); err != nil {
		return nil, fmt.Errorf("create snapshot: %w", err)
	}
	b.mu.Lock()
	b.imgAt = b.imgAt.AddDate(-1, 0, 0) // the next lookup sees the new snapshot
	b.mu.Unlock()
	return ir.Image, nil
}

// metadataRulesPath holds SMEK's own nftables table on the node.
const metadataRulesPath = "/etc/smek/metadata-block.nft"

// metadataRules keep pods (forwarded traffic) away from the cloud
// metadata service. An iptables rule in FORWARD is not enough: k3s's
// network-policy controller (kube-router) accepts the traffic of pods a
// NetworkPolicy selects in chains it inserts ahead of it. In nftables an
// accept ends a packet's walk through one base chain only, while a drop in
// any base chain is final, so a base chain of SMEK's own on the forward
// hook drops these packets whatever iptables (iptables-nft is a table
// beside this one) or kube-router accept. The forward hook sees the
// address after DNAT, so a Service whose endpoint is the metadata address
// is dropped too. The table is replaced as a whole at every load.
const metadataRules = `#!/usr/sbin/nft -f
# SMEK: pods never reach the cloud metadata service.
table inet smek_metadata
delete table inet smek_metadata
table inet smek_metadata {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip daddr 169.254.169.254 drop
		ip6 daddr fe80::a9fe:a9fe drop
	}
}
`

// metadataBlock loads metadataRules at boot, before k3s starts.
const metadataBlock = `[Unit]
Description=SMEK: keep pods away from the metadata service
Before=k3s.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f ` + metadataRulesPath + `
[Install]
WantedBy=multi-user.target
`

func installNodeFiles(ctx context.Context, conn *ssh.Client, ic ImageConfig) error {
	v := ic.K3sVersion
	steps := []struct {
		what, cmd string
		stdin     []byte
	}{
		{"install k3s", "curl -sfL https://get.k3s.io | INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_ENABLE=true INSTALL_K3S_VERSION=" + v + " sh -", nil},
		{"make the airgap folder", "mkdir -p /var/lib/rancher/k3s/agent/images", nil},
		{"fetch airgap images", "curl -sfLo /var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst https://github.com/k3s-io/k3s/releases/download/" + url.PathEscape(v) + "/k3s-airgap-images-amd64.tar.zst", nil},
		{"install the metadata block rules", "install -D -m 0644 /dev/stdin " + metadataRulesPath, []byte(metadataRules)},
		{"install the metadata block", "install -D -m 0644 /dev/stdin /etc/systemd/system/smek-metadata-block.service", []byte(metadataBlock)},
		{"enable the metadata block", "systemctl enable smek-metadata-block.service", nil},
	}
	names := make([]string, 0, len(ic.Manifests))
	for n := range ic.Manifests {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.ContainsAny(n, "/ ") {
			return fmt.Errorf("manifest name %q must be a plain file name", n)
		}
		steps = append(steps, struct {
			what, cmd string
			stdin     []byte
		}{"install manifest " + n, "install -D -m 0600 /dev/stdin /var/lib/rancher/k3s/server/manifests/smek-" + n, ic.Manifests[n]})
	}
	steps = append(steps, struct {
		what, cmd string
		stdin     []byte
	}{"clean cloud-init", "cloud-init clean --logs --machine-id", nil})
	for _, s := range steps {
		if err := runSSH(ctx, conn, s.cmd, s.stdin, nil); err != nil {
			return fmt.Errorf("image build: %s: %w", s.what, err)
		}
	}
	return nil
}
