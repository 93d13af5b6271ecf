package hetzner

import (
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/registrymirror"
)

// Files on the node SMEK writes at every boot.
const (
	k3sConfigPath = "/etc/rancher/k3s/config.yaml"
	psaConfigPath = "/etc/rancher/k3s/smek-psa.yaml"
	kubeconfigK3s = "/etc/rancher/k3s/k3s.yaml"
	// registriesPath is k3s's private registry configuration, read when
	// k3s starts; k3s writes containerd's hosts.toml files from it.
	registriesPath = "/etc/rancher/k3s/registries.yaml"
	// policyManifest is the tenant policy bundle as a k3s auto-deploy
	// manifest. k3s applies the folder "both on startup and when the file
	// is changed on disk" (k3s docs, packaged components): after a reboot
	// it applies this file again, over what SMEK applied. So the file
	// must be the flavor's bundle, not the image's baseline one.
	policyManifest = "/var/lib/rancher/k3s/server/manifests/smek-policy.yaml"
)

// k3sConfig is the per-boot k3s configuration: the server's address in the
// certificate, the node's labels, and PodSecurity for the flavor. k3s runs
// kube-apiserver with --allow-privileged=true; the baseline flavor turns it
// off as a second wall behind PodSecurity. Nothing k3s itself runs needs
// it: local-path-provisioner's helper pods are not privileged since
// v0.0.26 (v0.0.24 and v0.0.25 made them so), and ServiceLB's svclb pods
// add NET_ADMIN only. CoreDNS, ServiceLB (the seed promises both) and
// local-storage run; traefik and metrics-server do not.
func k3sConfig(name, ip string, memberID string, f cluster.Flavor) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by SMEK at boot\n")
	fmt.Fprintf(&b, "node-name: %q\n", name)
	fmt.Fprintf(&b, "tls-san:\n  - %q\n", ip)
	fmt.Fprintf(&b, "write-kubeconfig-mode: \"0600\"\n")
	fmt.Fprintf(&b, "node-label:\n  - \"smek.io/member=%s\"\n  - \"smek.io/size=%s\"\n", memberID, f.Size)
	fmt.Fprintf(&b, "disable:\n  - traefik\n  - metrics-server\n")
	fmt.Fprintf(&b, "kube-apiserver-arg:\n  - \"admission-control-config-file=%s\"\n", psaConfigPath)
	if !f.Privileged {
		fmt.Fprintf(&b, "  - \"allow-privileged=false\"\n")
	}
	return []byte(b.String())
}

// k3sRegistries is the part of k3s's registries.yaml SMEK writes.
type k3sRegistries struct {
	Mirrors map[string]k3sMirror `json:"mirrors"`
}

type k3sMirror struct {
	Endpoints []string `json:"endpoint"`
}

// registriesYAML is k3s's registries.yaml for the operator's mirrors: per
// registry its mirror URLs in order (k3s's containerd tries them, then
// the registry itself). None gives nil: no file.
func registriesYAML(ms []registrymirror.Mirror) ([]byte, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	regs, urls := registrymirror.Registries(ms)
	doc := k3sRegistries{Mirrors: map[string]k3sMirror{}}
	for _, r := range regs {
		doc.Mirrors[r] = k3sMirror{Endpoints: urls[r]}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("render registries.yaml: %w", err)
	}
	return append([]byte("# written by SMEK at boot\n"), b...), nil
}

// psaConfig is the PodSecurity admission configuration of the tenant
// policy bundle: baseline enforced (privileged for the privileged flavor),
// kube-system exempt.
func psaConfig(f cluster.Flavor) []byte {
	return policy.AdmissionConfig(policy.Options{Privileged: f.Privileged, LocalPathStorageClass: true})
}

// PolicyManifest renders the tenant policy bundle of flavor f as one
// auto-deploy manifest (YAML documents). k3s ships its own local-path
// StorageClass, so the bundle's is left out.
func PolicyManifest(f cluster.Flavor) ([]byte, error) {
	objs, err := policy.Objects(policy.Options{Privileged: f.Privileged})
	if err != nil {
		return nil, fmt.Errorf("render policy bundle: %w", err)
	}
	if len(objs) == 0 {
		return nil, errors.New("render policy bundle: no objects")
	}
	docs := make([]string, 0, len(objs))
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("render policy bundle: %w", err)
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "---\n")), nil
}
