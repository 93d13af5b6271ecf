package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const widget = `apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
`

// TestTenantUsesItsOwnCRDs: an operator's CRD and its custom resources work
// for the tenant of a local cluster (the grant follows the CRD by a watch).
func TestTenantUsesItsOwnCRDs(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("operator-dev", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{}`)
	kc := writeKubeconfig(t, c.Kubeconfig)
	dir := t.TempDir()
	for name, doc := range map[string]string{"crd.yaml": widgetCRD, "widget.yaml": widget} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := kubectl(t, kc, "apply", "-f", filepath.Join(dir, "crd.yaml")); err != nil {
		t.Fatalf("create CRD: %v: %s", err, out)
	}
	if out, err := kubectl(t, kc, "wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.example.com"); err != nil {
		t.Fatalf("CRD not established: %v: %s", err, out)
	}
	// The grant follows the CRD through a watch: a bounded wait for it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := kubectl(t, kc, "apply", "-f", filepath.Join(dir, "widget.yaml"))
		if err == nil {
			break
		}
		if !strings.Contains(out, "forbidden") || time.Now().After(deadline) {
			t.Fatalf("create a Widget: %v: %s", err, out)
		}
		kubectl(t, kc, "wait", "--for=create", "--timeout=2s", "clusterrole/smek-tenant-custom-resources")
	}
	if out, err := kubectl(t, kc, "get", "widgets", "w1", "-o", "jsonpath={.spec.size}"); err != nil || out != "3" {
		t.Errorf("get the Widget: %v: %q", err, out)
	}
}
