package policy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestAttacksThroughAPIKubeconfig proves the wiring: a cluster created
// through SMEK's API, used with the kubeconfig the API hands out, has the
// bundle in force.
func TestAttacksThroughAPIKubeconfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a SMEK server and a control plane")
	}
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("attacker", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := client.New(smek.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	created, err := api.Create(ctx, wire.CreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	withKubeconfig, err := api.Kubeconfig(ctx, created.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(withKubeconfig.Kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	c := &testCluster{tenant: cfg}
	if c.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNS}}, create); err != nil {
		t.Fatalf("tenant creates its namespace: %v", err)
	}
	if err := waitServiceAccount(ctx, c.cs, tenantNS); err != nil {
		t.Fatal(err)
	}
	picked := []string{
		"pod privileged", "pod hostPath", "ClusterIP port 22", "Service with externalIPs",
		"ConfigMap in kube-system", "token for the tenant itself", "delete ClusterRole cluster-admin",
		"bind cluster-admin cluster-wide", "create StorageClass", "create ValidatingAdmissionPolicy",
		"new namespace enforcing privileged",
	}
	var ran int
	for _, a := range attacks() {
		if !slices.Contains(picked, a.name) {
			continue
		}
		ran++
		t.Run(a.name, func(t *testing.T) {
			err := a.do(ctx, c)
			if err == nil || !strings.Contains(err.Error(), a.want) {
				t.Fatalf("got %v, want a denial containing %q", err, a.want)
			}
		})
	}
	if ran != len(picked) {
		t.Errorf("ran %d attacks, want %d: a picked name no longer exists", ran, len(picked))
	}
	for _, w := range tenantWork() {
		if !slices.Contains([]string{"pod", "Service ClusterIP on 80", "Service ClusterIP on 8080", "Secret", "auth can-i --list"}, w.name) {
			continue
		}
		t.Run(w.name, func(t *testing.T) {
			if err := w.do(ctx, c); err != nil {
				t.Fatal(err)
			}
		})
	}
}
