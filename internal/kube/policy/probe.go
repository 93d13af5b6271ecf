package policy

import (
	"context"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// probe is a request the bundle denies to the tenant, sent as a dry run.
type probe struct {
	name   string
	policy string // the ValidatingAdmissionPolicy that must deny it
	run    func(ctx context.Context, dyn dynamic.Interface) error
}

var dryRun = []string{metav1.DryRunAll}

// probes are ordered so that the policy applied last is probed last; the
// policies without a probe (node label, binding cluster-admin, which RBAC
// denies first) come before it in the bundle, and the admission plugin
// observes policies in the order they were written.
func probes() []probe {
	return []probe{
		{"service port 22", "smek-service-ports", func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "services", "default", map[string]any{
				"metadata": map[string]any{"name": "smek-probe"},
				"spec":     map[string]any{"ports": []any{map[string]any{"port": int64(22)}}},
			})
		}},
		{"config map in " + Namespace, "smek-protected-namespaces", func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "configmaps", Namespace, map[string]any{"metadata": map[string]any{"name": "smek-probe"}})
		}},
		{"namespace pinning pod security v1.22", "smek-namespace-pod-security", func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "", "v1", "namespaces", "", map[string]any{"metadata": map[string]any{
				"name": "smek-probe", "labels": map[string]any{"pod-security.kubernetes.io/enforce-version": "v1.22"},
			}})
		}},
		{"delete ClusterRole " + TenantClusterRole, "smek-cluster-rbac", func(ctx context.Context, dyn dynamic.Interface) error {
			gvr := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
			return dyn.Resource(gvr).Delete(ctx, TenantClusterRole, metav1.DeleteOptions{DryRun: dryRun})
		}},
		{"CRD in group rbac.authorization.k8s.io", "smek-crd-groups", func(ctx context.Context, dyn dynamic.Interface) error {
			return create(ctx, dyn, "apiextensions.k8s.io", "v1", "customresourcedefinitions", "", probeCRD("rbac.authorization.k8s.io"))
		}},
	}
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
