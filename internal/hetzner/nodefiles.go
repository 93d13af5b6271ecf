package hetzner

import (
	"fmt"
	"strings"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube/policy"
)

// Files on the node SMEK writes at every boot.
const (
	k3sConfigPath = "/etc/rancher/k3s/config.yaml"
	psaConfigPath = "/etc/rancher/k3s/smek-psa.yaml"
	kubeconfigK3s = "/etc/rancher/k3s/k3s.yaml"
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

// psaConfig is the PodSecurity admission configuration of the tenant
// policy bundle: baseline enforced (privileged for the privileged flavor),
// kube-system exempt.
func psaConfig(f cluster.Flavor) []byte {
	return policy.AdmissionConfig(policy.Options{Privileged: f.Privileged, LocalPathStorageClass: true})
}
