package k3snode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// k3s tracks every file of the manifests folder in an Addon object
// (k3s.cattle.io/v1, kube-system, named after the file up to its first
// dot): the deploy controller creates it when it takes the file up and
// sets spec.checksum (sha256 of the file) once the file's objects are
// applied (k3s pkg/deploy/controller.go). Readiness can tell from them
// that the deploy controller is done.
var (
	addonResource = schema.GroupVersionResource{Group: "k3s.cattle.io", Version: "v1", Resource: "addons"}
	crdResource   = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// ensureAddonCRD registers the Addon kind, as k3s does at start, and waits
// until it is served.
func ensureAddonCRD(ctx context.Context, dyn dynamic.Interface) error {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "addons.k3s.cattle.io"},
		"spec": map[string]any{
			"group": "k3s.cattle.io",
			"names": map[string]any{"kind": "Addon", "plural": "addons", "singular": "addon", "listKind": "AddonList"},
			"scope": "Namespaced",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{
						"spec": map[string]any{"type": "object", "properties": map[string]any{
							"source":   map[string]any{"type": "string"},
							"checksum": map[string]any{"type": "string"},
						}},
					},
				}},
			}},
		},
	}}
	if _, err := dyn.Resource(crdResource).Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register the Addon kind: %w", err)
	}
	for {
		_, err := dyn.Resource(addonResource).Namespace("kube-system").List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startAddon gets or creates the Addon of a manifest file.
func startAddon(ctx context.Context, dyn dynamic.Interface, file string) (*unstructured.Unstructured, error) {
	name, _, _ := strings.Cut(file, ".")
	ri := dyn.Resource(addonResource).Namespace("kube-system")
	a, err := ri.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		a = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
			"metadata": map[string]any{"name": name, "namespace": "kube-system"},
			"spec":     map[string]any{"source": ManifestsDir + "/" + file},
		}}
		a, err = ri.Create(ctx, a, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("addon %s: %w", name, err)
	}
	return a, nil
}

// finishAddon records that the file's objects are applied.
func finishAddon(ctx context.Context, dyn dynamic.Interface, a *unstructured.Unstructured, content []byte) error {
	sum := sha256.Sum256(content)
	if err := unstructured.SetNestedField(a.Object, hex.EncodeToString(sum[:]), "spec", "checksum"); err != nil {
		return err
	}
	if _, err := dyn.Resource(addonResource).Namespace("kube-system").Update(ctx, a, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("addon %s: %w", a.GetName(), err)
	}
	return nil
}
