package hetzner

import (
	"context"
	"fmt"
	"net"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
)

// ensureSSHKey finds the project key by name, registering it when missing.
// The result is cached: one request per process. Concurrent provisions
// wait for the first lookup instead of registering the key twice.
func (b *Backend) ensureSSHKey(ctx context.Context) (*hcloud.SSHKey, error) {
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	if b.sshKey != nil {
		return b.sshKey, nil
	}
	get := func() (*hcloud.SSHKey, error) {
		var key *hcloud.SSHKey
		err := b.api.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			key, resp, err = b.cfg.Client.SSHKey.GetByName(ctx, b.cfg.SSHKeyName)
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("get ssh key %s: %w", b.cfg.SSHKeyName, err)
		}
		return key, nil
	}
	key, err := get()
	if err != nil {
		return nil, err
	}
	if key == nil {
		pub := string(ssh.MarshalAuthorizedKey(b.cfg.Signer.PublicKey()))
		err = b.api.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			key, resp, err = b.cfg.Client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{
				Name: b.cfg.SSHKeyName, PublicKey: pub, Labels: map[string]string{LabelInstall: b.cfg.Installation},
			})
			return resp, err
		})
		if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
			// Registered meanwhile (by a lost answer, or another process).
			key, err = get()
		}
		if err != nil {
			return nil, fmt.Errorf("register ssh key %s: %w", b.cfg.SSHKeyName, err)
		}
		if key == nil {
			return nil, fmt.Errorf("register ssh key %s: not found after registering it", b.cfg.SSHKeyName)
		}
	}
	b.sshKey = key
	return key, nil
}

// ensureFirewall makes sure the installation's firewall exists. It applies
// by label selector to every SMEK node: 6443, 80, 443 and 1024-65535 open,
// 22 only from the provisioner's addresses.
func (b *Backend) ensureFirewall(ctx context.Context) error {
	if b.cfg.Firewall == "" {
		return nil
	}
	b.fwOnce.Lock()
	defer b.fwOnce.Unlock()
	if b.fwReady {
		return nil
	}
	var fw *hcloud.Firewall
	err := b.api.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		fw, resp, err = b.cfg.Client.Firewall.GetByName(ctx, b.cfg.Firewall)
		return resp, err
	})
	if err != nil {
		return fmt.Errorf("get firewall %s: %w", b.cfg.Firewall, err)
	}
	if fw == nil {
		rules, err := firewallRules(b.cfg.SourceCIDRs)
		if err != nil {
			return err
		}
		err = b.api.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			_, resp, err = b.cfg.Client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
				Name: b.cfg.Firewall, Labels: map[string]string{LabelInstall: b.cfg.Installation}, Rules: rules,
				ApplyTo: []hcloud.FirewallResource{{
					Type:          hcloud.FirewallResourceTypeLabelSelector,
					LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: LabelInstall + "=" + b.cfg.Installation + "," + LabelRole + "=node"},
				}},
			})
			return resp, err
		})
		if err != nil && !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
			return fmt.Errorf("create firewall %s: %w", b.cfg.Firewall, err)
		}
	}
	b.fwReady = true
	return nil
}

func firewallRules(sources []string) ([]hcloud.FirewallRule, error) {
	all := cidrs("0.0.0.0/0", "::/0")
	var ssh []net.IPNet
	for _, s := range sources {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("firewall source %q: %w", s, err)
		}
		ssh = append(ssh, *n)
	}
	in := func(port string, src []net.IPNet, desc string) hcloud.FirewallRule {
		return hcloud.FirewallRule{Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr(port), SourceIPs: src, Description: hcloud.Ptr(desc)}
	}
	rules := []hcloud.FirewallRule{
		in("6443", all, "kubernetes api"), in("80", all, "http"), in("443", all, "https"), in("1024-65535", all, "node ports and high ports"),
	}
	if len(ssh) > 0 {
		rules = append(rules, in("22", ssh, "ssh from the provisioner"))
	}
	return rules, nil
}

func cidrs(s ...string) []net.IPNet {
	var out []net.IPNet
	for _, c := range s {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, *n)
	}
	return out
}
