package hetzner_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/hetzner"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestServerWithHetznerBackend starts a complete SMEK server (`provisioner
// serve --backend hetzner`'s wiring) against the fake, creates a cluster
// over HTTP /v1/clusters from the warm pool and uses its kubeconfig with
// kubectl.
func TestServerWithHetznerBackend(t *testing.T) {
	s, fake, _ := startHetznerServer(t, k3snode.Config{}, nil)
	bin := smektest.KubeBin(t)
	token := s.Token("acme", smektest.TokenOptions{})
	waitReady(t, s)

	// The builder and the pool member, counted before the claim: once the
	// member is claimed, the pool may start its replacement at any time.
	if n := fake.Counts()["POST /servers"]; n != 2 {
		t.Errorf("servers created before the claim: got %d, want 2", n)
	}
	body, _ := json.Marshal(wire.CreateRequest{})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/clusters", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c wire.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/clusters: %d, %v", resp.StatusCode, err)
	}
	if c.Kubeconfig == "" || c.Timings == nil || !c.Timings.Warm {
		t.Fatalf("create answer: %+v", c)
	}
	f := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(f, []byte(c.Kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", f, "get", "nodes", "-l", "smek-cluster-id="+c.ClusterID, "-o", "name").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "node/smek-e2e-") {
		t.Errorf("kubectl get nodes: %v: %s", err, out)
	}
}

// waitReady waits for a ready member of the hetzner pool, woken by the
// pool's ready signal.
func waitReady(t *testing.T, s *smektest.SMEK) {
	t.Helper()
	timeout := time.After(3 * time.Minute)
	for {
		ready := s.Pool.Ready()
		ms, err := s.DB.Members(context.Background(), "hetzner")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.State == cluster.MemberReady {
				return
			}
		}
		select {
		case <-ready:
		case <-timeout:
			t.Fatalf("no ready hetzner member after 3 minutes")
		}
	}
}

// startHetznerServer starts a complete SMEK server (`provisioner serve
// --backend hetzner`'s wiring) with a fixed warm pool of one against the
// fake, whose servers are simulated machines (node; Dir and KubeBin are
// set here), and builds the k3s snapshot first. configure, when set,
// changes the server's configuration further.
func startHetznerServer(t *testing.T, node k3snode.Config, configure func(*server.Config)) (*smektest.SMEK, *hcloudfake.Server, hetzner.Config) {
	t.Helper()
	bin := smektest.KubeBin(t)
	dir := t.TempDir()
	node.Dir, node.KubeBin = dir, bin
	fake := hcloudfake.New(hcloudfake.Config{
		DefaultDuration: 20 * time.Millisecond, DataDir: dir,
		Machines: k3snode.Factory(node),
	}).Start()
	t.Cleanup(fake.Close)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	cfg := hetzner.Config{
		Client: hetzner.NewClient(fake.URL, "t", nil), Installation: "e2e", SSHKeyName: "smek", Signer: signer, CredentialKey: key,
		Firewall: "smek-nodes", SourceCIDRs: []string{"127.0.0.1/32"}, SSHAddr: hetzner.FakeSSHAddr(fake.URL, nil),
		APIAddr:      hetzner.FakeAPIAddr(fake.URL, nil),
		ExpectCreate: 20 * time.Millisecond, ExpectRebuild: 20 * time.Millisecond, ExpectPower: 20 * time.Millisecond, ExpectShutdown: 20 * time.Millisecond,
		PollMin: 10 * time.Millisecond, PollMax: 50 * time.Millisecond, RetryBase: 10 * time.Millisecond,
	}
	builder, err := hetzner.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := builder.BuildImage(context.Background(), hetzner.ImageConfig{K3sVersion: "v1.36.3+k3s1"}); err != nil {
		t.Fatalf("build image: %v", err)
	}
	s := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) {
		c.Backend = "hetzner"
		c.Hetzner = cfg
		// A fixed pool of one: the test claims from a warm pool at once
		// (auto, hetzner's default, starts at its min of 0).
		c.PoolPolicy = server.PoolPolicyConfig{Name: "fixed"}
		if configure != nil {
			configure(c)
		}
	}})
	return s, fake, cfg
}
