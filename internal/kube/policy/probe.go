package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// probe is a request the bundle denies, sent as a dry run: by the tenant,
// or by the admin for the invariants that hold whoever writes.
type probe struct {
	name   string
	policy string // the ValidatingAdmissionPolicy that must deny it
	admin  bool   // sent as the admin, not as the tenant
	run    func(ctx context.Context, dyn dynamic.Interface) error
}

var dryRun = []string{metav1.DryRunAll}

// probes are ordered so that the policy applied last is probed last; the
// policies without a probe (node label, binding cluster-admin, which RBAC
// denies first) come before it in the bundle, and the admission plugin
// observes policies in the order they were written.
func probes() []probe {
	return []probe{
		{"service port 22", "smek-service-ports", false, func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "services", "default", map[string]any{
				"metadata": map[string]any{"name": "smek-probe"},
				"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(22)}}},
			})
		}},
		{"config map in " + Namespace, "smek-protected-namespaces", false, func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "configmaps", Namespace, map[string]any{"metadata": map[string]any{"name": "smek-probe"}})
		}},
		{"namespace pinning pod security v1.22", "smek-namespace-pod-security", false, func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "namespaces", "", map[string]any{"metadata": map[string]any{
				"name": "smek-probe", "labels": map[string]any{"pod-security.kubernetes.io/enforce-version": "v1.22"},
			}})
		}},
		{"delete ClusterRole " + TenantClusterRole, "smek-cluster-rbac", false, func(ctx context.Context, dyn dynamic.Interface) error {
			gvr := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
			return dyn.Resource(gvr).Delete(ctx, TenantClusterRole, metav1.DeleteOptions{DryRun: dryRun})
		}},
		{"CRD in group rbac.authorization.k8s.io", "smek-crd-groups", false, func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "apiextensions.k8s.io", "v1", "customresourcedefinitions", "", probeCRD("rbac.authorization.k8s.io"))
		}},
		{"webhook without SMEK's match condition (the mutating policy adds it)", "smek-webhook-exemption", false, probeWebhookExemption},
		{"webhook calling localhost", "smek-webhook-targets", false, func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "services", "default", map[string]any{
				"metadata": map[string]any{"name": "smek-probe"},
				"spec":     map[string]any{"type": "ExternalName", "externalName": "localhost"},
			})
		}},
		{"wildcard in view, as the admin", "smek-rbac-invariants", true, func(ctx context.Context, dyn dynamic.Interface) error {
			patch := []byte(`[{"op":"add","path":"/rules/-","value":{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}}]`)
			_, err := dyn.Resource(clusterRoleResource).Patch(ctx, "view", types.JSONPatchType, patch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
		{"another subject on " + TenantClusterRole + ", as the admin", "smek-binding-invariants", true, func(ctx context.Context, dyn dynamic.Interface) error {
			patch := []byte(`[{"op":"add","path":"/subjects/-","value":{"kind":"Group","name":"system:authenticated"}}]`)
			_, err := dyn.Resource(clusterRoleBindingResource).Patch(ctx, TenantClusterRole, types.JSONPatchType, patch, metav1.PatchOptions{DryRun: dryRun})
			return err
		}},
	}
}

var clusterRoleBindingResource = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}

// probeWebhookExemption creates a webhook configuration as a dry run. Only
// when the mutating policy added SMEK's match condition does it report the
// denial that marks the probe as passed: a refusal by the validating policy
// of the same name means the mutating one is not yet observed, and keeps
// the wait going.
func probeWebhookExemption(ctx context.Context, dyn dynamic.Interface) error {
	gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "smek-probe"},
		"webhooks": []any{map[string]any{
			"name":                    "probe.smek.example.com",
			"clientConfig":            map[string]any{"url": "https://smek-probe.invalid/"},
			"sideEffects":             "None",
			"admissionReviewVersions": []any{"v1"},
		}},
	}}
	got, err := dyn.Resource(gvr).Create(ctx, u, metav1.CreateOptions{DryRun: dryRun})
	if err != nil {
		return fmt.Errorf("the mutating policy is not yet in force: %w", errors.New(err.Error()))
	}
	hooks, _, _ := unstructured.NestedSlice(got.Object, "webhooks")
	for _, h := range hooks {
		conds, _, _ := unstructured.NestedSlice(h.(map[string]any), "matchConditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["name"] == ExemptionCondition && m["expression"] == TenantExpression() {
				return &apierrors.StatusError{ErrStatus: metav1.Status{
					Reason:  metav1.StatusReasonForbidden,
					Code:    403,
					Message: "ValidatingAdmissionPolicy 'smek-webhook-exemption' in force: SMEK: the mutating policy added the match condition",
				}}
			}
		}
	}
	return errors.New("the webhook came back without SMEK's match condition")
}

func create(ctx context.Context, dyn dynamic.Interface, group, version, resource, ns string, obj map[string]any) error {
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
	u := &unstructured.Unstructured{Object: obj}
	kind := map[string]string{"services": "Service", "configmaps": "ConfigMap", "namespaces": "Namespace", "customresourcedefinitions": "CustomResourceDefinition"}[resource]
	u.SetAPIVersion(gvr.GroupVersion().String())
	u.SetKind(kind)
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	_, err := ri.Create(ctx, u, metav1.CreateOptions{DryRun: dryRun})
	return err
}

// probeCRD is a valid CRD in group, so that only the policy can deny it.
func probeCRD(group string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{
			"name":        "smekprobes." + group,
			"annotations": map[string]any{"api-approved.kubernetes.io": "unapproved, SMEK probe"},
		},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "smekprobes", "singular": "smekprobe", "kind": "SmekProbe", "listKind": "SmekProbeList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object"}},
			}},
		},
	}
}

// deniedBy reports whether err is policy's denial. The API server names the
// denying policy only in the status message, so the message is what can
// tell one policy's denial from RBAC's or another policy's.
func deniedBy(err error, policy string) bool {
	return err != nil && (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) &&
		strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policy+"'") &&
		strings.Contains(err.Error(), "SMEK: ")
}
