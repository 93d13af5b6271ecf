// Package policy is the security bundle SMEK applies to every cluster before
// it joins the pool: PodSecurity admission defaults, the tenant's
// ServiceAccount and wildcard-free ClusterRole, and ValidatingAdmissionPolicies
// for what PodSecurity and RBAC cannot say. The manifests are embedded and
// rendered per cluster flavor (privileged or not); the same rendering serves
// the local backend (Apply) and k3s (auto-deploy manifests).
//
// docs/security.md lists every restriction, why it exists and the test in
// this package that proves it.
package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Names the bundle uses inside every cluster.
const (
	// Namespace is SMEK's own namespace, out of the tenant's reach.
	Namespace = "smek-system"
	// TenantServiceAccount, in Namespace, is the identity in every
	// kubeconfig SMEK hands out.
	TenantServiceAccount = "tenant"
	// NodeLabel carries the cluster id on every node; only SMEK sets it.
	NodeLabel = "smek-cluster-id"
	// TenantClusterRole holds the tenant's rights on built-in resources.
	TenantClusterRole = "smek-tenant"
	// CustomResourcesClusterRole holds the tenant's rights on the custom
	// resources of its CRDs (see GrantCustomResources).
	CustomResourcesClusterRole = "smek-tenant-custom-resources"
	// FieldManager is SMEK's server-side-apply field manager.
	FieldManager = "smek"
	// ExemptionCondition names the match condition SMEK adds to every
	// admission webhook a tenant writes: with it, the webhook never sees
	// the requests of the cluster's own components (TenantExpression).
	ExemptionCondition = "smek-trusted-requesters"
)

// TenantUsername is the Kubernetes user name of the tenant's credential.
const TenantUsername = "system:serviceaccount:" + Namespace + ":" + TenantServiceAccount

// Options select the flavor of the bundle.
type Options struct {
	// Privileged clusters let the tenant run privileged pods; every other
	// restriction still holds.
	Privileged bool
	// LocalPathStorageClass adds a default StorageClass "local-path"
	// (provisioner rancher.io/local-path) for backends that lack one. k3s
	// ships its own.
	LocalPathStorageClass bool
}

// ProtectedNamespaces are the namespaces the tenant can read but not write.
var ProtectedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", Namespace}

// trustedUsers are the cluster's own components that act without the
// system:masters group. Service accounts of kube-system (controllers run
// with --use-service-account-credentials) and the system:nodes group are
// trusted as well. The tenant cannot become any of them: it cannot approve
// certificate requests, mint tokens in kube-system or impersonate. A
// "system:" prefix alone is not trust: the tenant may bind its own rights to
// system:anonymous, and such requests stay confined.
var trustedUsers = []string{
	"system:apiserver",
	"system:kube-controller-manager",
	"system:kube-scheduler",
	"system:kube-proxy",
	// k3s: its embedded controllers and cloud controller manager.
	"system:k3s-controller",
	"k3s-cloud-controller-manager",
}

// reservedGroups are API groups the tenant may not define CRDs in, and
// whose custom resources GrantCustomResources never grants: the built-in
// groups of Kubernetes v1.36 and those of k3s's own components (a HelmChart
// is installed by k3s with cluster-admin rights).
var reservedGroups = []string{
	"", "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps",
	"authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io",
	"coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "extensions", "flowcontrol.apiserver.k8s.io",
	"internal.apiserver.k8s.io", "metrics.k8s.io", "networking.k8s.io", "node.k8s.io", "policy",
	"rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io",
	"storagemigration.k8s.io",
	"helm.cattle.io", "k3s.cattle.io",
}

// policyNames lists the ValidatingAdmissionPolicies in the bundle; each has
// a binding of the same name.
var policyNames = []string{
	"smek-protected-namespaces",
	"smek-service-ports",
	"smek-namespace-pod-security",
	"smek-node-label",
	"smek-cluster-rbac",
	"smek-bind-cluster-admin",
	"smek-crd-groups",
	"smek-webhook-exemption",
	"smek-webhook-targets",
	"smek-pod-status",
	"smek-rbac-invariants",
	"smek-binding-invariants",
}

// guardedRoles are the ClusterRoles that smek-rbac-invariants checks
// whoever writes them: SMEK's tenant roles, and the aggregated built-in
// roles the tenant may bind in its namespaces.
var guardedRoles = []string{TenantClusterRole, CustomResourcesClusterRole, "admin", "edit", "view"}

// enforceLevel is the Pod Security Standard the flavor enforces.
func (o Options) enforceLevel() string {
	if o.Privileged {
		return "privileged"
	}
	return "baseline"
}

// allowedLevels are the values the tenant may give a namespace's
// pod-security.kubernetes.io/enforce label: the flavor's level or stricter.
func (o Options) allowedLevels() []string {
	if o.Privileged {
		return []string{"privileged", "baseline", "restricted"}
	}
	return []string{"baseline", "restricted"}
}

// AdmissionConfig returns the AdmissionConfiguration for kube-apiserver's
// --admission-control-config-file: PodSecurity enforces baseline (the
// privileged flavor: privileged, still warning and auditing baseline), with
// kube-system exempt.
func AdmissionConfig(o Options) []byte {
	return fmt.Appendf(nil, `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: %q
      enforce-version: "latest"
      audit: "baseline"
      audit-version: "latest"
      warn: "baseline"
      warn-version: "latest"
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: ["kube-system"]
`, o.enforceLevel())
}

// APIServerFlags returns the kube-apiserver flags the bundle needs, to be
// passed after the backend's own.
func APIServerFlags(o Options) []string {
	return []string{
		fmt.Sprintf("--allow-privileged=%t", o.Privileged),
		// On by default; named so that a distribution's defaults cannot
		// silently drop them.
		"--enable-admission-plugins=NodeRestriction,PodSecurity,MutatingAdmissionPolicy,ValidatingAdmissionPolicy",
	}
}

// TenantExpression is the CEL match condition of every policy: true for a
// request from anyone but the cluster's own components.
func TenantExpression() string {
	trusted := []string{
		"'system:masters' in request.userInfo.groups",
		"'system:nodes' in request.userInfo.groups",
		"request.userInfo.username.startsWith('system:serviceaccount:kube-system:')",
		"request.userInfo.username in [" + celList(trustedUsers) + "]",
	}
	return "!(" + strings.Join(trusted, " || ") + ")"
}

// exemptionCheck is the CEL that holds when every webhook of a
// configuration carries ExemptionCondition with TenantExpression.
func exemptionCheck() string {
	return "!has(object.webhooks) || object.webhooks.all(w, has(w.matchConditions) && w.matchConditions.exists(c, c.name == " +
		celString(ExemptionCondition) + " && c.expression == " + celString(TenantExpression()) + "))"
}

// exemptionApply is the apply configuration of the smek-webhook-exemption
// MutatingAdmissionPolicy: ExemptionCondition merged into every webhook
// (webhooks and match conditions are lists keyed by name).
func exemptionApply() string {
	cond := "Object.webhooks.matchConditions{name: " + celString(ExemptionCondition) + ", expression: " + celString(TenantExpression()) + "}"
	return "has(object.webhooks) ? Object{webhooks: object.webhooks.map(w, Object.webhooks{name: w.name, matchConditions: [" + cond + "]})} : Object{}"
}

// forbiddenHost is the CEL that holds when the host h (a URL's host name
// or an ExternalName) is on the API server's own machine: localhost,
// loopback, link-local or unspecified. A host with a colon that is no IP
// address (an IPv4-mapped IPv6 address, which CEL's ip() refuses) counts as
// forbidden too.
const forbiddenHost = "h == '' || h.lowerAscii() in ['localhost', 'localhost.'] || h.lowerAscii().endsWith('.localhost') || h.lowerAscii().endsWith('.localhost.') || " +
	"(isIP(h) ? (ip(h).isLoopback() || ip(h).isLinkLocalUnicast() || ip(h).isLinkLocalMulticast() || ip(h).isUnspecified()) : h.contains(':'))"

// celString quotes s as a CEL string literal.
func celString(s string) string { return strconv.Quote(s) }

// celList renders strings as the elements of a CEL list literal.
func celList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = "'" + s + "'"
	}
	return strings.Join(q, ", ")
}

// yamlString quotes s as a YAML double-quoted scalar (JSON strings are).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
