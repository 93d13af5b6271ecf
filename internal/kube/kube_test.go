package kube_test

import (
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/kube/policy"
	"k8s.io/client-go/tools/clientcmd"
)

// The policy bundle guards the names kube uses: they must be the same.
func TestNamesMatchThePolicyBundle(t *testing.T) {
	for _, c := range []struct{ kube, policy string }{
		{kube.SystemNamespace, policy.Namespace},
		{kube.TenantServiceAccount, policy.TenantServiceAccount},
		{kube.NodeLabel, policy.NodeLabel},
	} {
		if c.kube != c.policy {
			t.Errorf("kube uses %q where the policy bundle guards %q", c.kube, c.policy)
		}
	}
}

func TestKubeconfigCarriesTheClusterID(t *testing.T) {
	doc, err := kube.Kubeconfig(cluster.ID("c-abc123"), "https://127.0.0.1:6443", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "secret-token")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(doc)
	if err != nil {
		t.Fatalf("kubeconfig does not load: %v\n%s", err, doc)
	}
	if cfg.CurrentContext != "c-abc123" {
		t.Errorf("current context %q, want c-abc123", cfg.CurrentContext)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || ctx.Cluster != "c-abc123" || !strings.Contains(ctx.AuthInfo, "c-abc123") {
		t.Fatalf("context %+v does not name the cluster", ctx)
	}
	if got := cfg.Clusters["c-abc123"].Server; got != "https://127.0.0.1:6443" {
		t.Errorf("server %q", got)
	}
	if got := cfg.AuthInfos[ctx.AuthInfo].Token; got != "secret-token" {
		t.Errorf("token %q", got)
	}
}
