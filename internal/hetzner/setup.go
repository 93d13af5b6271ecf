package hetzner

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/logkey"
)

// ensureSSHKey finds the project key by name, registering it when missing.
// The result is cached: one request per process. Concurrent provisions
// wait for the first lookup instead of registering the key twice. A
// project that already holds the public key under another name answers
// the registration with uniqueness_error (one public key per project):
// that key is found by its fingerprint and used. A key of that name that
// is not the project key is an error (servers would not let SMEK in).
func (b *Backend) ensureSSHKey(ctx context.Context) (*hcloud.SSHKey, error) {
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	if b.sshKey != nil {
		return b.sshKey, nil
	}
	fingerprint := ssh.FingerprintLegacyMD5(b.cfg.Signer.PublicKey())
	get := func(what string, fn func() (*hcloud.SSHKey, *hcloud.Response, error)) (*hcloud.SSHKey, error) {
		var key *hcloud.SSHKey
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			key, resp, err = fn()
			return resp, err
		})
		if err != nil {
			return nil, fmt.Errorf("get ssh key %s: %w", what, err)
		}
		return key, nil
	}
	byName := func() (*hcloud.SSHKey, error) {
		return get(b.cfg.SSHKeyName, func() (*hcloud.SSHKey, *hcloud.Response, error) {
			return b.cfg.Client.SSHKey.GetByName(ctx, b.cfg.SSHKeyName)
		})
	}
	byFingerprint := func() (*hcloud.SSHKey, error) {
		return get(fingerprint, func() (*hcloud.SSHKey, *hcloud.Response, error) {
			return b.cfg.Client.SSHKey.GetByFingerprint(ctx, fingerprint)
		})
	}
	key, err := byName()
	if err != nil {
		return nil, err
	}
	if key == nil {
		pub := string(ssh.MarshalAuthorizedKey(b.cfg.Signer.PublicKey()))
		err = b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			key, resp, err = b.cfg.Client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{
				Name: b.cfg.SSHKeyName, PublicKey: pub, Labels: map[string]string{LabelInstall: b.cfg.Installation},
			})
			return resp, err
		})
		if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
			// Registered meanwhile (by a lost answer, or another process),
			// or the public key is there under another name.
			if key, err = byName(); err == nil && key == nil {
				if key, err = byFingerprint(); err == nil && key != nil {
					b.log.Info("the project key is registered under another name: using it", logkey.Name, key.Name, logkey.ID, key.ID, "fingerprint", fingerprint)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("register ssh key %s: %w", b.cfg.SSHKeyName, err)
		}
		if key == nil {
			return nil, fmt.Errorf("register ssh key %s: not found after registering it", b.cfg.SSHKeyName)
		}
	}
	if key.Fingerprint != "" && key.Fingerprint != fingerprint {
		return nil, fmt.Errorf("the ssh key %q at Hetzner (fingerprint %s) is not the key in --ssh-key-file (%s): "+
			"servers made with it would not let SMEK in; name another with --ssh-key-name", key.Name, key.Fingerprint, fingerprint)
	}
	b.sshKey = key
	return key, nil
}

// ensureFirewall makes sure the installation's firewall exists, holds the
// rules the configuration asks for (6443, 80, 443 and 1024-65535 open, 22
// only from SourceCIDRs) and applies by label selector to every SMEK node.
// An existing firewall whose rules differ (say --ssh-source-cidr changed)
// gets the configured ones (set_rules), and the backend waits until they
// are in force. Once per process: a GET, more only when something changes.
func (b *Backend) ensureFirewall(ctx context.Context) error {
	if b.cfg.Firewall == "" {
		return nil
	}
	b.fwMu.Lock()
	defer b.fwMu.Unlock()
	if b.fwReady {
		return nil
	}
	rules, err := firewallRules(b.cfg.SourceCIDRs)
	if err != nil {
		return err
	}
	selector := hcloud.FirewallResource{
		Type:          hcloud.FirewallResourceTypeLabelSelector,
		LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: LabelInstall + "=" + b.cfg.Installation + "," + LabelRole + "=node"},
	}
	fw, err := b.getFirewall(ctx)
	if err != nil {
		return err
	}
	if fw == nil {
		err = b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			_, resp, err = b.cfg.Client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
				Name: b.cfg.Firewall, Labels: map[string]string{LabelInstall: b.cfg.Installation}, Rules: rules,
				ApplyTo: []hcloud.FirewallResource{selector},
			})
			return resp, err
		})
		switch {
		case err == nil:
			// Not waited for: the rules come with the firewall, and until
			// it applies a server is only more open, never less.
			b.fwReady = true
			return nil
		case hcloud.IsError(err, hcloud.ErrorCodeUniquenessError):
			// Made meanwhile (a lost answer, another process): check it.
			if fw, err = b.getFirewall(ctx); err != nil {
				return err
			}
			if fw == nil {
				return fmt.Errorf("create firewall %s: not found after creating it", b.cfg.Firewall)
			}
		default:
			return fmt.Errorf("create firewall %s: %w", b.cfg.Firewall, err)
		}
	}
	if !sameRules(fw.Rules, rules) {
		b.log.Info("bringing the firewall's rules in line with the configuration", logkey.Firewall, fw.Name, logkey.ID, fw.ID,
			"had", describeRules(fw.Rules), "want", describeRules(rules))
		var actions []*hcloud.Action
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			actions, resp, err = b.cfg.Client.Firewall.SetRules(ctx, fw, hcloud.FirewallSetRulesOpts{Rules: rules})
			return resp, err
		})
		if err == nil {
			err = b.watch.wait(ctx, b.cfg.ExpectPower, actions...)
		}
		if err != nil {
			return fmt.Errorf("set the rules of firewall %s: %w", b.cfg.Firewall, err)
		}
	}
	applied := slices.ContainsFunc(fw.AppliedTo, func(r hcloud.FirewallResource) bool {
		return r.Type == hcloud.FirewallResourceTypeLabelSelector && r.LabelSelector != nil && r.LabelSelector.Selector == selector.LabelSelector.Selector
	})
	if !applied {
		b.log.Info("applying the firewall to SMEK's nodes", logkey.Firewall, fw.Name, "selector", selector.LabelSelector.Selector)
		var actions []*hcloud.Action
		err := b.budget.do(ctx, func() (*hcloud.Response, error) {
			var resp *hcloud.Response
			var err error
			actions, resp, err = b.cfg.Client.Firewall.ApplyResources(ctx, fw, []hcloud.FirewallResource{selector})
			return resp, err
		})
		if err == nil {
			err = b.watch.wait(ctx, b.cfg.ExpectPower, actions...)
		}
		if err != nil && !hcloud.IsError(err, hcloud.ErrorCode("firewall_already_applied")) {
			return fmt.Errorf("apply firewall %s: %w", b.cfg.Firewall, err)
		}
	}
	b.fwReady = true
	return nil
}

// getFirewall looks the installation's firewall up by name; nil when it
// does not exist.
func (b *Backend) getFirewall(ctx context.Context) (*hcloud.Firewall, error) {
	var fw *hcloud.Firewall
	err := b.budget.do(ctx, func() (*hcloud.Response, error) {
		var resp *hcloud.Response
		var err error
		fw, resp, err = b.cfg.Client.Firewall.GetByName(ctx, b.cfg.Firewall)
		return resp, err
	})
	if err != nil {
		return nil, fmt.Errorf("get firewall %s: %w", b.cfg.Firewall, err)
	}
	return fw, nil
}

func firewallRules(sources []string) ([]hcloud.FirewallRule, error) {
	all := cidrs("0.0.0.0/0", "::/0")
	var ssh []net.IPNet
	for _, s := range sources {
		_, n, err := net.ParseCIDR(strings.TrimSpace(s))
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

// sameRules says whether two rule sets let the same traffic through
// (descriptions and order aside).
func sameRules(a, b []hcloud.FirewallRule) bool {
	return slices.Equal(ruleKeys(a), ruleKeys(b))
}

func ruleKeys(rules []hcloud.FirewallRule) []string {
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		port := ""
		if r.Port != nil {
			port = *r.Port
		}
		nets := func(ns []net.IPNet) string {
			s := make([]string, 0, len(ns))
			for _, n := range ns {
				s = append(s, n.String())
			}
			slices.Sort(s)
			return strings.Join(s, ",")
		}
		out = append(out, fmt.Sprintf("%s %s %s from %s to %s", r.Direction, r.Protocol, port, nets(r.SourceIPs), nets(r.DestinationIPs)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func describeRules(rules []hcloud.FirewallRule) string { return strings.Join(ruleKeys(rules), "; ") }

func cidrs(s ...string) []net.IPNet {
	var out []net.IPNet
	for _, c := range s {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, *n)
	}
	return out
}
