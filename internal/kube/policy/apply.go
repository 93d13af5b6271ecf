package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// kinds maps every kind in the bundle to its resource. The bundle is ours,
// so a table is enough and spares a discovery round trip per cluster.
var kinds = map[schema.GroupKind]struct {
	resource   string
	namespaced bool
}{
	{Kind: "Namespace"}:      {"namespaces", false},
	{Kind: "ServiceAccount"}: {"serviceaccounts", true},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         {"clusterroles", false},
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  {"clusterrolebindings", false},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        {"validatingadmissionpolicies", false},
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: {"validatingadmissionpolicybindings", false},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          {"mutatingadmissionpolicies", false},
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   {"mutatingadmissionpolicybindings", false},
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   {"storageclasses", false},
}

// Objects returns the rendered bundle as objects, in apply order.
func Objects(o Options) ([]*unstructured.Unstructured, error) {
	doc, err := Manifests(o)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("decode bundle: %w", err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
}

// Apply applies the bundle for o with the admin configuration cfg
// (server-side apply, field manager "smek", so it is idempotent and repairs
// drift) and returns once the policies are in force for the tenant.
//
// Apply it before the cluster is handed out, with kube-controller-manager
// running (it fills the aggregated roles Apply waits for); it needs no Node.
func Apply(ctx context.Context, cfg *rest.Config, o Options) error {
	objs, err := Objects(o)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	for _, obj := range objs {
		if err := applyObject(ctx, dyn, obj); err != nil {
			return err
		}
	}
	return WaitInForce(ctx, cfg)
}

func applyObject(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	k, ok := kinds[gvk.GroupKind()]
	if !ok {
		return fmt.Errorf("apply %s %s: kind not in the bundle's table", gvk.Kind, obj.GetName())
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvk.GroupVersion().WithResource(k.resource))
	if k.namespaced {
		ri = dyn.Resource(gvk.GroupVersion().WithResource(k.resource)).Namespace(obj.GetNamespace())
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("apply %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	return nil
}

// probeInterval paces the checks that the policies are in force. Policy
// bindings reach kube-apiserver's admission plugin through an informer, a
// few hundred milliseconds after they are written.
const probeInterval = 50 * time.Millisecond

// WaitInForce returns once every probe of the bundle is denied for the
// tenant with SMEK's message and the built-in aggregated roles are filled,
// or ctx ends. It proves RBAC and the admission
// policies are both observed: a probe the tenant's RBAC did not yet allow is
// denied by RBAC, not by SMEK, and keeps the wait going.
func WaitInForce(ctx context.Context, cfg *rest.Config) error {
	tenant := TenantImpersonation(cfg)
	dyn, err := dynamic.NewForConfig(tenant)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	admin, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	pending := probes()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	var last error
	for {
		if err := aggregated(ctx, admin); err != nil {
			last = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for the policies to be in force: %w (last: %w)", ctx.Err(), last)
			case <-tick.C:
			}
			continue
		}
		var next []probe
		for _, p := range pending {
			as := dyn
			if p.admin {
				as = admin
			}
			if err := p.run(ctx, as); !deniedBy(err, p.policy) {
				last = fmt.Errorf("probe %s: got %v, want a denial by %s", p.name, err, p.policy)
				next = append(next, p)
			}
		}
		if pending = next; len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the policies to be in force: %w (last: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// TenantImpersonation returns a copy of the admin configuration that acts
// as the tenant. SMEK uses it to check the bundle without minting a token.
func TenantImpersonation(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: TenantUsername,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"},
	}
	return c
}

// aggregatedRoles are the built-in ClusterRoles that kube-controller-manager
// fills from others. Until it has, RBAC's escalation check sees them empty
// and would let the tenant bind them; filled, admin and edit carry
// impersonate, which the tenant may not get. So no cluster is handed out
// before they are filled.
var aggregatedRoles = []string{"admin", "edit", "view"}

func aggregated(ctx context.Context, dyn dynamic.Interface) error {
	for _, name := range aggregatedRoles {
		role, err := dyn.Resource(clusterRoleResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get ClusterRole %s: %w", name, err)
		}
		if rules, _, _ := unstructured.NestedSlice(role.Object, "rules"); len(rules) == 0 {
			return fmt.Errorf("ClusterRole %s not yet aggregated by kube-controller-manager", name)
		}
	}
	return nil
}
