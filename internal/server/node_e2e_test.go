package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationLocalNodeRunsTenantPods: with --local-nodes on, a tenant's
// kubeconfig from POST /v1/clusters runs a pod on the cluster's node, the
// API says what node the clusters have, and the tenant restrictions hold
// on a node that runs what it is given.
func TestIntegrationLocalNodeRunsTenantPods(t *testing.T) {
	smek, token, c, kubectl := startNodeCluster(t)
	if v := mustJSON[wire.Versions](t, 200, "GET", smek.URL+"/v1/versions", token, ""); v.NodeKind != wire.NodeKubelet {
		t.Fatalf("/v1/versions node-kind %q, want %q", v.NodeKind, wire.NodeKubelet)
	}
	if c.NodeKind != wire.NodeKubelet {
		t.Fatalf("cluster node-kind %q, want %q", c.NodeKind, wire.NodeKubelet)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := kubectl(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// What a newcomer tries first, word for word.
	must("run", "hello", "--image=busybox", "--restart=Never", "--", "echo", "hello from SMEK")
	must("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/hello", "--timeout=120s")
	if out := must("logs", "hello"); out != "hello from SMEK" {
		t.Fatalf("kubectl logs: %q", out)
	}
	// The node runs what it is given, so the restrictions must hold before
	// it: a pod that would mount the host is refused at admission.
	out, err := kubectl("run", "escape", "--image=busybox", "--restart=Never",
		`--overrides={"spec":{"containers":[{"name":"escape","image":"busybox","command":["cat","/host/etc/shadow"],"volumeMounts":[{"name":"host","mountPath":"/host"}]}],"volumes":[{"name":"host","hostPath":{"path":"/"}}]}}`)
	if err == nil || !strings.Contains(out, "hostPath volumes") {
		t.Fatalf("a baseline tenant ran a pod that mounts the host: %v\n%s", err, out)
	}
}

// startNodeCluster starts a server with --local-nodes on and creates a
// cluster for a new account's token; kubectl runs with its kubeconfig. It
// skips without what a node needs (root, the packages), or fails with
// SMEK_REQUIRE_NODES set.
func startNodeCluster(t *testing.T) (*smektest.SMEK, string, wire.Cluster, func(args ...string) (string, error)) {
	t.Helper()
	bin := smektest.KubeBin(t)
	if err := local.CheckNodeSupport(bin); err != nil {
		if os.Getenv("SMEK_REQUIRE_NODES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) { c.LocalNodes = "on" }})
	token := smek.Token("tenant", smektest.TokenOptions{})
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "3m"}`)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(c.Kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	return smek, token, c, kubectl
}
