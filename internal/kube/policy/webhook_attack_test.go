package policy_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	smekcluster "github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/kube/policy"
)

// The attacks in this file use admission webhooks against the cluster's
// own components. SMEK's policies exempt those components, so a webhook
// that rewrites or refuses their requests would turn the exemption against
// the cluster: SMEK's grant loop or kube-controller-manager would write
// whatever the tenant's webhook made of their request. Three layers stop
// that, and each is attacked on its own:
//   - tenant webhooks never see the requests of the cluster's own
//     identities (a match condition SMEK adds to every webhook the tenant
//     writes);
//   - invariants on the final objects that hold whoever writes them;
//   - GrantCustomResources checks that what it applied is what it meant.

// exemptionCondition is the name of the match condition SMEK adds to every
// webhook a tenant writes.
const exemptionCondition = "smek-trusted-requesters"

func TestWebhookAttacksBaseline(t *testing.T) { runWebhookAttacks(t, false) }

func TestWebhookAttacksPrivileged(t *testing.T) { runWebhookAttacks(t, true) }

func runWebhookAttacks(t *testing.T, privileged bool) {
	c := cluster(t, privileged)
	w := startEvilWebhook(t)

	t.Run("A: a mutating webhook rewrites SMEK's grant of custom resources", func(t *testing.T) {
		ctx := testContext(t)
		w.reset()
		c.tenantMutatingWebhook(ctx, t, "evil-a", mutating("rewrite.evil-a.example.com", w.clientConfig("/wildcard"), clusterRoleRules(), nil))
		// The webhook is live for the tenant's own requests: it widens the
		// tenant's ClusterRole, which RBAC then refuses.
		live(ctx, t, "the webhook widens the tenant's own ClusterRole, which RBAC refuses", func() (bool, error) {
			_, err := c.cs.RbacV1().ClusterRoles().Create(ctx, clusterRole("evil-a-probe", readConfigMaps), create)
			if err == nil {
				return false, c.adminCS.RbacV1().ClusterRoles().Delete(ctx, "evil-a-probe", metav1.DeleteOptions{})
			}
			return strings.Contains(err.Error(), msgEscalation), nil
		})
		// SMEK's grant loop writes the custom-resource role as admin.
		c.tenantCreatesCRDAndUsesIt(ctx, t, "evil-a.example.com", "things")
		c.checkNoWildcard(ctx, t, policy.CustomResourcesClusterRole)
		c.checkTenantNotAdmin(ctx, t)
		w.checkNeverSawTrusted(t)
	})

	t.Run("B: a mutating webhook rewrites the aggregation of view", func(t *testing.T) {
		ctx := testContext(t)
		w.reset()
		c.tenantBindsView(ctx, t, "evil-b-view")
		c.tenantMutatingWebhook(ctx, t, "evil-b",
			mutating("probe.evil-b.example.com", w.clientConfig("/allow"), clusterRoleRules(), map[string]string{"evil-probe": "true"}),
			mutating("rewrite.evil-b.example.com", w.clientConfig("/wildcard"), clusterRoleRules(), map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}),
		)
		live(ctx, t, "the webhook sees the tenant's own ClusterRole", func() (bool, error) {
			probe := clusterRole("evil-b-probe", readConfigMaps)
			probe.Labels = map[string]string{"evil-probe": "true"}
			if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, probe, create); err != nil {
				return false, err
			}
			return len(w.requests("/allow")) > 0, c.adminCS.RbacV1().ClusterRoles().Delete(ctx, probe.Name, metav1.DeleteOptions{})
		})
		source := clusterRole("evil-b-source", createConfigMaps)
		source.Labels = map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true", "evil-probe": "true"}
		if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, source, create); err != nil {
			t.Fatalf("tenant creates a ClusterRole that aggregates into view: %v", err)
		}
		t.Cleanup(func() {
			c.adminCS.RbacV1().ClusterRoles().Delete(context.Background(), source.Name, metav1.DeleteOptions{})
		})
		c.waitAggregated(ctx, t, "view", createConfigMaps)
		c.checkNoWildcard(ctx, t, "view")
		c.checkTenantNotAdmin(ctx, t)
		w.checkNeverSawTrusted(t)
	})

	t.Run("a validating webhook refuses SMEK's claim, credential and grant", func(t *testing.T) {
		ctx := testContext(t)
		w.reset()
		fail := admissionregistrationv1.Fail
		hook := validating("deny.evil-c.example.com", w.clientConfig("/deny"), []admissionregistrationv1.RuleWithOperations{
			rule("", "configmaps", "serviceaccounts/token", "nodes"),
			rule("rbac.authorization.k8s.io", "clusterroles", "clusterrolebindings"),
		})
		hook.FailurePolicy = &fail
		c.tenantValidatingWebhook(ctx, t, "evil-c", hook)
		live(ctx, t, "the webhook refuses the tenant's own ConfigMap", func() (bool, error) {
			_, err := c.cs.CoreV1().ConfigMaps(tenantNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "evil-c-probe"}}, create)
			if err == nil {
				return false, c.adminCS.CoreV1().ConfigMaps(tenantNS).Delete(ctx, "evil-c-probe", metav1.DeleteOptions{})
			}
			return strings.Contains(err.Error(), evilDenial), nil
		})
		// What SMEK does on a claim and on a start, as its admin; the
		// claim labels the node too, as for a member made ready before
		// ids were reserved, so that every write passes the tenant's
		// webhooks.
		admin, err := kube.NewAdmin(c.admin)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		claimed := smekcluster.Cluster{ID: testClusterID, Account: "attack", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := admin.Claim(ctx, claimed, false); err != nil {
			t.Errorf("SMEK's claim through the tenant's webhook: %v", err)
		}
		if _, err := admin.Credential(ctx, claimed); err != nil {
			t.Errorf("SMEK's fresh credential through the tenant's webhook: %v", err)
		}
		c.tenantCreatesCRDAndUsesIt(ctx, t, "evil-c.example.com", "things")
		w.checkNeverSawTrusted(t)
	})

	t.Run("a mutating webhook rewrites pods in kube-system", func(t *testing.T) {
		ctx := testContext(t)
		w.reset()
		c.tenantMutatingWebhook(ctx, t, "evil-d", mutating("mark.evil-d.example.com", w.clientConfig("/mark"), []admissionregistrationv1.RuleWithOperations{rule("", "pods")}, nil))
		live(ctx, t, "the webhook marks the tenant's own pod", func() (bool, error) {
			mine, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod("evil-d-probe", tenantNS, nil), create)
			if err != nil {
				return false, err
			}
			zero := int64(0)
			return mine.Annotations[evilAnnotation] != "", c.adminCS.CoreV1().Pods(tenantNS).Delete(ctx, mine.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		})
		// A pod the admin makes, and one kube-controller-manager makes.
		sys, err := c.adminCS.CoreV1().Pods("kube-system").Create(ctx, testPod("evil-d-system", "kube-system", nil), create)
		if err != nil {
			t.Fatalf("admin creates a pod in kube-system: %v", err)
		}
		t.Cleanup(func() {
			c.adminCS.CoreV1().Pods("kube-system").Delete(context.Background(), sys.Name, metav1.DeleteOptions{})
		})
		if sys.Annotations[evilAnnotation] != "" {
			t.Errorf("the tenant's webhook rewrote the admin's pod in kube-system")
		}
		made := c.controllerPodInKubeSystem(ctx, t, "evil-d-rs")
		if made.Annotations[evilAnnotation] != "" {
			t.Errorf("the tenant's webhook rewrote kube-controller-manager's pod %s in kube-system", made.Name)
		}
		w.checkNeverSawTrusted(t)
	})

	t.Run("the tenant removes or replaces SMEK's match condition", func(t *testing.T) {
		ctx := testContext(t)
		hook := validating("strip.evil-e.example.com", w.clientConfig("/allow"), []admissionregistrationv1.RuleWithOperations{rule("example.com", "widgets")})
		hook.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: exemptionCondition, Expression: "true"}}
		c.tenantValidatingWebhook(ctx, t, "evil-e", hook)
		c.checkExemption(ctx, t, "evil-e")
		err := jsonPatch(ctx, c.cs.AdmissionregistrationV1().RESTClient(), "validatingwebhookconfigurations", "", "evil-e", `[{"op":"remove","path":"/webhooks/0/matchConditions"}]`)
		if err != nil && !strings.Contains(err.Error(), "SMEK: ") {
			t.Fatalf("remove the match condition: got %v, want success (SMEK puts it back) or SMEK's denial", err)
		}
		c.checkExemption(ctx, t, "evil-e")
	})
}

// TestInvariantsHoldWhoeverWrites attacks the second layer alone: webhooks
// that the admin installed (as a trusted chart would, so SMEK adds no match
// condition) rewrite the cluster's own writes; the final objects must
// still keep every restriction.
func TestInvariantsHoldWhoeverWritesBaseline(t *testing.T) { runInvariantAttacks(t, false) }

func TestInvariantsHoldWhoeverWritesPrivileged(t *testing.T) { runInvariantAttacks(t, true) }

func runInvariantAttacks(t *testing.T, privileged bool) {
	c := cluster(t, privileged)
	w := startEvilWebhook(t)
	ctx := testContext(t)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "trusted-chart-rewrite"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			mutating("smek.rewrite.example.com", w.clientConfig("/wildcard"), clusterRoleRules(), map[string]string{"app.kubernetes.io/managed-by": "smek"}),
			mutating("defaults.rewrite.example.com", w.clientConfig("/wildcard"), clusterRoleRules(), map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}),
		},
	}
	if _, err := c.adminCS.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, create); err != nil {
		t.Fatal(err)
	}
	removed := false
	remove := func() {
		if !removed {
			c.adminCS.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
			removed = true
		}
	}
	t.Cleanup(remove)
	live(ctx, t, "the admin's webhook rewrites a ClusterRole of SMEK's", func() (bool, error) {
		probe := clusterRole("evil-liveness", readConfigMaps)
		probe.Labels = map[string]string{"app.kubernetes.io/managed-by": "smek"}
		if _, err := c.adminCS.RbacV1().ClusterRoles().Create(ctx, probe, create); err != nil {
			return false, err
		}
		seen := slices.ContainsFunc(w.requests("/wildcard"), func(s seenRequest) bool { return s.name == probe.Name })
		return seen, c.adminCS.RbacV1().ClusterRoles().Delete(ctx, probe.Name, metav1.DeleteOptions{})
	})

	t.Run("SMEK's grant rewritten", func(t *testing.T) {
		ctx := testContext(t)
		crd := crd("evil-f.example.com", "things")
		if _, err := c.dyn.Resource(crdGVR).Create(ctx, crd, create); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.adminDelete(crdGVR, crd.GetName()) })
		waitSeen(ctx, t, w, "/wildcard", policy.CustomResourcesClusterRole)
		c.checkNoWildcard(ctx, t, policy.CustomResourcesClusterRole)
		c.checkTenantNotAdmin(ctx, t)
	})

	t.Run("the aggregation of view rewritten", func(t *testing.T) {
		ctx := testContext(t)
		c.tenantBindsView(ctx, t, "evil-g-view")
		source := clusterRole("evil-g-source", createConfigMaps)
		source.Labels = map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}
		if _, err := c.cs.RbacV1().ClusterRoles().Create(ctx, source, create); err != nil {
			t.Fatalf("tenant creates a ClusterRole that aggregates into view: %v", err)
		}
		t.Cleanup(func() {
			c.adminCS.RbacV1().ClusterRoles().Delete(context.Background(), source.Name, metav1.DeleteOptions{})
		})
		waitSeen(ctx, t, w, "/wildcard", "view")
		c.checkNoWildcard(ctx, t, "view")
		c.checkTenantNotAdmin(ctx, t)
	})

	t.Run("the grant recovers once the webhook is gone", func(t *testing.T) {
		ctx := testContext(t)
		remove()
		c.tenantCreatesCRDAndUsesIt(ctx, t, "evil-h.example.com", "things")
		c.checkNoWildcard(ctx, t, policy.CustomResourcesClusterRole)
	})
}

// TestInvariantProbes writes, as the admin and as a dry run, what a
// rewritten trusted request would write: each is refused.
func TestInvariantProbes(t *testing.T) {
	c := cluster(t, false)
	ctx := testContext(t)
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	wildcard := `[{"op":"add","path":"/rules/-","value":{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}}]`
	for _, role := range []string{policy.TenantClusterRole, "view", "edit", "admin"} {
		_, err := c.adminCS.RbacV1().ClusterRoles().Patch(ctx, role, types.JSONPatchType, []byte(wildcard), dry)
		if err == nil || !strings.Contains(err.Error(), "SMEK: ") {
			t.Errorf("admin adds a wildcard rule to %s: got %v, want SMEK's denial", role, err)
		}
	}
	for _, verb := range []string{"escalate", "bind", "impersonate"} {
		patch := fmt.Sprintf(`[{"op":"add","path":"/rules/-","value":{"apiGroups":["rbac.authorization.k8s.io"],"resources":["clusterroles"],"verbs":[%q]}}]`, verb)
		_, err := c.adminCS.RbacV1().ClusterRoles().Patch(ctx, "view", types.JSONPatchType, []byte(patch), dry)
		if err == nil || !strings.Contains(err.Error(), "SMEK: ") {
			t.Errorf("admin adds %s to view: got %v, want SMEK's denial", verb, err)
		}
	}
	patch := `[{"op":"add","path":"/rules/-","value":{"apiGroups":["admissionregistration.k8s.io"],"resources":["validatingadmissionpolicybindings"],"verbs":["delete"]}}]`
	if _, err := c.adminCS.RbacV1().ClusterRoles().Patch(ctx, "edit", types.JSONPatchType, []byte(patch), dry); err == nil || !strings.Contains(err.Error(), "SMEK: ") {
		t.Errorf("admin lets edit delete admission policy bindings: got %v, want SMEK's denial", err)
	}
	subject := `[{"op":"add","path":"/subjects/-","value":{"kind":"ServiceAccount","name":"default","namespace":"work"}}]`
	for _, b := range []string{policy.TenantClusterRole, policy.CustomResourcesClusterRole} {
		if _, err := c.adminCS.RbacV1().ClusterRoleBindings().Patch(ctx, b, types.JSONPatchType, []byte(subject), dry); err == nil || !strings.Contains(err.Error(), "SMEK: ") {
			t.Errorf("admin adds a subject to the binding %s: got %v, want SMEK's denial", b, err)
		}
	}
	crb := clusterRoleBinding("tenant-is-admin", "cluster-admin")
	crb.Subjects = []rbacv1.Subject{{Kind: "ServiceAccount", Name: policy.TenantServiceAccount, Namespace: policy.Namespace}}
	if _, err := c.adminCS.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "SMEK: ") {
		t.Errorf("admin binds cluster-admin to the tenant: got %v, want SMEK's denial", err)
	}
	// The namespace labels of Pod Security hold for every writer but in
	// the system namespaces.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "evil-privileged", Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}}
	if _, err := c.adminCS.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err == nil || !strings.Contains(err.Error(), "SMEK: ") {
		t.Errorf("admin creates a namespace enforcing privileged on the baseline flavor: got %v, want SMEK's denial", err)
	}
}

var (
	readConfigMaps   = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}
	createConfigMaps = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}}
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func rule(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resources},
	}
}

func clusterRoleRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{rule("rbac.authorization.k8s.io", "clusterroles")}
}

func mutating(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations, objectLabels map[string]string) admissionregistrationv1.MutatingWebhook {
	none, ignore := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Ignore
	h := admissionregistrationv1.MutatingWebhook{
		Name: name, ClientConfig: cc, Rules: rules, SideEffects: &none, FailurePolicy: &ignore,
		AdmissionReviewVersions: []string{"v1"},
	}
	if objectLabels != nil {
		h.ObjectSelector = &metav1.LabelSelector{MatchLabels: objectLabels}
	}
	return h
}

func validating(name string, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) admissionregistrationv1.ValidatingWebhook {
	none, ignore := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Ignore
	return admissionregistrationv1.ValidatingWebhook{
		Name: name, ClientConfig: cc, Rules: rules, SideEffects: &none, FailurePolicy: &ignore,
		AdmissionReviewVersions: []string{"v1"},
	}
}

func (c *testCluster) tenantMutatingWebhook(ctx context.Context, t *testing.T, name string, hooks ...admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := c.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, create); err != nil {
		t.Fatalf("tenant creates MutatingWebhookConfiguration %s: %v", name, err)
	}
	t.Cleanup(func() {
		c.adminCS.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func (c *testCluster) tenantValidatingWebhook(ctx context.Context, t *testing.T, name string, hooks ...admissionregistrationv1.ValidatingWebhook) {
	t.Helper()
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name}, Webhooks: hooks}
	if _, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, create); err != nil {
		t.Fatalf("tenant creates ValidatingWebhookConfiguration %s: %v", name, err)
	}
	t.Cleanup(func() {
		c.adminCS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// checkExemption fails unless every webhook of the tenant's configuration
// carries SMEK's match condition with SMEK's expression.
func (c *testCluster) checkExemption(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	cfg, err := c.adminCS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range cfg.Webhooks {
		i := slices.IndexFunc(h.MatchConditions, func(m admissionregistrationv1.MatchCondition) bool { return m.Name == exemptionCondition })
		if i < 0 {
			t.Errorf("webhook %s has no match condition %s: %+v", h.Name, exemptionCondition, h.MatchConditions)
			continue
		}
		if got, want := h.MatchConditions[i].Expression, policy.TenantExpression(); got != want {
			t.Errorf("webhook %s: match condition %s is %q, want SMEK's %q", h.Name, exemptionCondition, got, want)
		}
	}
}

// tenantCreatesCRDAndUsesIt creates a CRD as the tenant and waits until the
// tenant may create one of its resources, which needs SMEK's grant.
func (c *testCluster) tenantCreatesCRDAndUsesIt(ctx context.Context, t *testing.T, group, plural string) {
	t.Helper()
	def := crd(group, plural)
	if _, err := c.dyn.Resource(crdGVR).Create(ctx, def, create); err != nil {
		t.Fatalf("tenant creates CRD %s: %v", def.GetName(), err)
	}
	t.Cleanup(func() { c.adminDelete(crdGVR, def.GetName()) })
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: plural}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1", "kind": def.Object["spec"].(map[string]any)["names"].(map[string]any)["kind"],
		"metadata": map[string]any{"name": "one"},
	}}
	var last error
	if err := poll(ctx, func() (bool, error) {
		_, last = c.dyn.Resource(gvr).Namespace(tenantNS).Create(ctx, obj, create)
		return last == nil, nil
	}); err != nil {
		t.Fatalf("the tenant never got to use its CRD %s (SMEK's grant): %v; last: %v", def.GetName(), err, last)
	}
}

func (c *testCluster) adminDelete(gvr schema.GroupVersionResource, name string) {
	dyn, err := dynamicFor(c.admin)
	if err == nil {
		dyn.Resource(gvr).Delete(context.Background(), name, metav1.DeleteOptions{})
	}
}

// tenantBindsView binds the built-in view role cluster-wide to the tenant
// itself, which the tenant may do.
func (c *testCluster) tenantBindsView(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	crb := clusterRoleBinding(name, "view")
	crb.Subjects = []rbacv1.Subject{{Kind: "ServiceAccount", Name: policy.TenantServiceAccount, Namespace: policy.Namespace}}
	if _, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, create); err != nil {
		t.Fatalf("tenant binds view to itself: %v", err)
	}
	t.Cleanup(func() {
		c.adminCS.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// waitAggregated waits until kube-controller-manager has aggregated rule
// into the ClusterRole name.
func (c *testCluster) waitAggregated(ctx context.Context, t *testing.T, name string, want rbacv1.PolicyRule) {
	t.Helper()
	if err := poll(ctx, func() (bool, error) {
		role, err := c.adminCS.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Equal(r.APIGroups, want.APIGroups) && slices.Equal(r.Resources, want.Resources) && slices.Equal(r.Verbs, want.Verbs)
		}), nil
	}); err != nil {
		t.Fatalf("ClusterRole %s never aggregated %v: %v", name, want, err)
	}
}

func (c *testCluster) checkNoWildcard(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	role, err := c.adminCS.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range role.Rules {
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("ClusterRole %s holds a wildcard rule: %+v", name, r)
		}
	}
}

// checkTenantNotAdmin asks the API server, like kubectl auth can-i '*' '*',
// whether the tenant may do everything.
func (c *testCluster) checkTenantNotAdmin(ctx context.Context, t *testing.T) {
	t.Helper()
	r, err := c.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "*", Group: "*", Resource: "*"},
	}}, create)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Allowed {
		t.Errorf("the tenant may do everything (kubectl auth can-i '*' '*' = yes): %s", r.Status.Reason)
	}
}

// controllerPodInKubeSystem has kube-controller-manager make a pod in
// kube-system (a ReplicaSet the admin creates) and returns it.
func (c *testCluster) controllerPodInKubeSystem(ctx context.Context, t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p := testPod(name, "kube-system", nil)
	one := int32(1)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: p.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.Labels}, Spec: p.Spec},
		},
	}
	if _, err := c.adminCS.AppsV1().ReplicaSets("kube-system").Create(ctx, rs, create); err != nil {
		t.Fatalf("admin creates ReplicaSet %s in kube-system: %v", name, err)
	}
	t.Cleanup(func() {
		c.adminCS.AppsV1().ReplicaSets("kube-system").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	var made *corev1.Pod
	if err := poll(ctx, func() (bool, error) {
		pods, err := c.adminCS.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		made = &pods.Items[0]
		return true, nil
	}); err != nil {
		t.Fatalf("kube-controller-manager made no pod for ReplicaSet %s: %v", name, err)
	}
	return made
}

// waitSeen waits until the webhook has seen a request for the object name
// on path: the trusted write it was meant to rewrite was attempted.
func waitSeen(ctx context.Context, t *testing.T, w *evilWebhook, path, name string) {
	t.Helper()
	if err := poll(ctx, func() (bool, error) {
		return slices.ContainsFunc(w.requests(path), func(s seenRequest) bool { return s.name == name }), nil
	}); err != nil {
		t.Fatalf("no write of %s reached the webhook: %v", name, err)
	}
}

func TestHostUnreachableBaseline(t *testing.T) { runHostAttacks(t, false) }

func TestHostUnreachablePrivileged(t *testing.T) { runHostAttacks(t, true) }

// runHostAttacks makes the tenant's API server connect into the machine it
// runs on, as a port scanner would: admission webhooks on this machine's
// ports, by address and by a name that resolves to it, through an
// ExternalName Service, and the pods proxy of a pod whose IP is this
// machine's. None may connect, and an open port must look like a closed
// one.
func runHostAttacks(t *testing.T, privileged bool) {
	c := cluster(t, privileged)
	open, accepted := countingListener(t)
	closed := closedPort(t)

	scan := func(t *testing.T, name string, url func(port int) string) (openErr, closedErr error) {
		ctx := testContext(t)
		fail := admissionregistrationv1.Fail
		hooks := []admissionregistrationv1.ValidatingWebhook{}
		for _, target := range []struct {
			label string
			port  int
		}{{"open", open}, {"closed", closed}} {
			u := url(target.port)
			h := validating(target.label+".scan.example.com", admissionregistrationv1.WebhookClientConfig{URL: &u}, []admissionregistrationv1.RuleWithOperations{rule("", "configmaps")})
			h.FailurePolicy = &fail
			h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"scan": name + "-" + target.label}}
			hooks = append(hooks, h)
		}
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "scan-" + name}, Webhooks: hooks}
		if _, err := c.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, create); err != nil {
			return err, err
		}
		t.Cleanup(func() {
			c.adminCS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
		})
		probe := func(target string) error {
			_, err := c.cs.CoreV1().ConfigMaps(tenantNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
				GenerateName: "scan-", Labels: map[string]string{"scan": name + "-" + target},
			}}, create)
			return err
		}
		// Both webhooks of the configuration come into force together.
		live(ctx, t, "the scanning webhooks are called", func() (bool, error) {
			openErr = probe("open")
			return openErr != nil, nil
		})
		return openErr, probe("closed")
	}

	t.Run("webhooks on loopback ports by address", func(t *testing.T) {
		openErr, closedErr := scan(t, "literal", func(port int) string { return fmt.Sprintf("https://127.0.0.1:%d/", port) })
		if openErr == nil || !strings.Contains(openErr.Error(), msgWebhookTarget) {
			t.Errorf("open port: got %v, want SMEK's denial of the webhook", openErr)
		}
		if closedErr == nil || !strings.Contains(closedErr.Error(), msgWebhookTarget) {
			t.Errorf("closed port: got %v, want SMEK's denial of the webhook", closedErr)
		}
		if n := accepted(); n > 0 {
			t.Errorf("the tenant's API server connected to this machine's open port %d times", n)
		}
	})

	t.Run("webhooks on loopback ports by name", func(t *testing.T) {
		before := c.egress.Stats().Denied
		openErr, closedErr := scan(t, "name", func(port int) string { return fmt.Sprintf("https://%s:%d/", loopbackHost, port) })
		sameDenial(t, openErr, closedErr, open, closed)
		if n := accepted(); n > 0 {
			t.Errorf("the tenant's API server connected to this machine's open port %d times", n)
		}
		if c.egress.Stats().Denied <= before {
			t.Error("the egress proxy denied nothing; the webhooks never tried to connect")
		}
	})

	t.Run("a webhook through an ExternalName Service that resolves to loopback", func(t *testing.T) {
		ctx := testContext(t)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "to-scan", Namespace: tenantNS},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: loopbackHost},
		}
		if _, err := c.cs.CoreV1().Services(tenantNS).Create(ctx, svc, create); err != nil {
			t.Fatalf("tenant creates ExternalName Service: %v", err)
		}
		t.Cleanup(func() {
			c.adminCS.CoreV1().Services(tenantNS).Delete(context.Background(), svc.Name, metav1.DeleteOptions{})
		})
		port := int32(open)
		fail := admissionregistrationv1.Fail
		h := validating("svc.scan.example.com", admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: tenantNS, Name: svc.Name, Port: &port}},
			[]admissionregistrationv1.RuleWithOperations{rule("", "configmaps")})
		h.FailurePolicy = &fail
		h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"scan": "service"}}
		c.tenantValidatingWebhook(ctx, t, "scan-service", h)
		var err error
		live(ctx, t, "the webhook through the Service is called", func() (bool, error) {
			_, err = c.cs.CoreV1().ConfigMaps(tenantNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "scan-", Labels: map[string]string{"scan": "service"}}}, create)
			return err != nil, nil
		})
		if !strings.Contains(err.Error(), "403") {
			t.Errorf("got %v, want the egress proxy's refusal (403)", err)
		}
		if n := accepted(); n > 0 {
			t.Errorf("the tenant's API server connected to this machine's open port %d times", n)
		}
	})

	t.Run("the pods proxy to a pod whose IP is this machine's", func(t *testing.T) {
		ctx := testContext(t)
		host := hostAddress(t)
		p, err := c.cs.CoreV1().Pods(tenantNS).Create(ctx, testPod("proxied", tenantNS, nil), create)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.adminCS.CoreV1().Pods(tenantNS).Delete(context.Background(), p.Name, metav1.DeleteOptions{}) })
		// The IP is forged by the admin, as a compromised node could: the
		// tenant itself may not (smek-pod-status).
		patch := fmt.Sprintf(`{"status":{"podIP":%q,"podIPs":[{"ip":%q}]}}`, host, host)
		if _, err := c.adminCS.CoreV1().Pods(tenantNS).Patch(ctx, p.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
			t.Fatal(err)
		}
		before := c.egress.Stats().Denied
		err = c.cs.CoreV1().RESTClient().Get().Namespace(tenantNS).Resource("pods").Name(fmt.Sprintf("%s:%d", p.Name, open)).SubResource("proxy").Do(ctx).Error()
		if err == nil {
			t.Fatal("the tenant reached this machine through the pods proxy")
		}
		if c.egress.Stats().Denied <= before {
			t.Errorf("the egress proxy denied nothing: %v", err)
		}
	})
}

// sameDenial fails unless both errors are the egress proxy's refusal and
// read the same once the ports are taken out: an open port must not be
// told from a closed one.
func sameDenial(t *testing.T, openErr, closedErr error, open, closed int) {
	t.Helper()
	if openErr == nil || closedErr == nil {
		t.Fatalf("got %v and %v, want two refusals", openErr, closedErr)
	}
	norm := func(err error, port int, label string) string {
		s := strings.ReplaceAll(err.Error(), strconv.Itoa(port), "PORT")
		s = strings.ReplaceAll(s, label+".scan.example.com", "HOOK")
		return regexp.MustCompile(`configmaps "[^"]*"`).ReplaceAllString(s, "configmaps")
	}
	o, c := norm(openErr, open, "open"), norm(closedErr, closed, "closed")
	if !strings.Contains(o, "403") {
		t.Errorf("open port: got %v, want the egress proxy's refusal (403)", openErr)
	}
	if o != c {
		t.Errorf("an open port answers differently from a closed one:\nopen:   %s\nclosed: %s", o, c)
	}
}

// countingListener listens on a loopback port and counts the connections
// it accepts.
func countingListener(t *testing.T) (int, func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			conn.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() int { return int(n.Load()) }
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// hostAddress returns an address of this machine that kube-apiserver would
// proxy to (global unicast), or skips the test.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no global unicast IPv4 address to pose as a pod IP")
	return ""
}

// live waits until try reports that a webhook just configured is in force:
// kube-apiserver observes webhook configurations through an informer, a
// moment after they are written. try undoes what it made when the webhook
// was not yet called.
func live(ctx context.Context, t *testing.T, what string, try func() (bool, error)) {
	t.Helper()
	if err := poll(ctx, try); err != nil {
		t.Fatalf("%s: %v; the attack would prove nothing", what, err)
	}
}
