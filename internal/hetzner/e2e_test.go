package hetzner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"golang.org/x/crypto/ssh"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/kube/policy"
	"github.com/smek/action/internal/local/localtest"
)

// kubeBin returns the folder of the Kubernetes binaries (skips without
// them, fails under CI).
func kubeBin(t testing.TB) string { return localtest.KubeBin(t) }

type env struct {
	fake    *hcloudfake.Server
	client  *hcloud.Client
	backend *Backend
}

func newEnv(t *testing.T, machines bool, fcfg hcloudfake.Config) *env {
	t.Helper()
	if machines {
		dir := t.TempDir()
		fcfg.Machines = k3snode.Factory(k3snode.Config{Dir: dir, KubeBin: kubeBin(t)})
		fcfg.DataDir = dir
		// A system from a snapshot answers its first SSH connection with
		// the snapshot's old host key: the backend must wait for its own.
		if fcfg.HostKeyLag == 0 {
			fcfg.HostKeyLag = 1
		}
	}
	fake := hcloudfake.New(fcfg).Start()
	t.Cleanup(fake.Close)
	client := hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("t"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	b, err := New(Config{
		Client: client, Installation: "test", SSHKeyName: "smek", Signer: signer, CredentialKey: key,
		Firewall: "smek-nodes", SourceCIDRs: []string{"127.0.0.1/32"},
		SSHAddr: FakeSSHAddr(fake.URL, nil), APIAddr: FakeAPIAddr(fake.URL, nil),
		ExpectCreate: 10 * time.Millisecond, ExpectRebuild: 10 * time.Millisecond, ExpectPower: 10 * time.Millisecond, ExpectShutdown: 10 * time.Millisecond,
		PollMin: time.Millisecond, PollMax: 20 * time.Millisecond, RetryBase: time.Millisecond,
		ReadyTimeout: 2 * time.Minute,
		Policy: func(ctx context.Context, cfg *rest.Config, f cluster.Flavor) error {
			return policy.Apply(ctx, cfg, policy.Options{Privileged: f.Privileged, LocalPathStorageClass: true})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, client: client, backend: b}
}

var flavor = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}

// TestEndToEnd builds a golden image, provisions a member from it, claims
// it and uses the tenant kubeconfig, stops and starts it, releases it
// (rebuild + bootstrap) and destroys it, all through hcloud-go against the
// fake with SSH into simulated nodes running a real control plane.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, true, hcloudfake.Config{DefaultDuration: 5 * time.Millisecond})
	img, err := e.backend.BuildImage(ctx, ImageConfig{K3sVersion: "v1.36.3+k3s1"})
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	if img.Labels[LabelK8sVersion] != "1.36.3" {
		t.Errorf("image labels: got %v", img.Labels)
	}
	if all, _ := e.client.Server.All(ctx); len(all) != 0 {
		t.Errorf("servers after image build: got %d, want 0 (builder deleted)", len(all))
	}
	versions, err := e.backend.Versions(ctx)
	if err != nil || len(versions) != 1 || versions[0] != "1.36.3" {
		t.Fatalf("versions: got %v, %v", versions, err)
	}

	e.fake.ResetCounts()
	m := cluster.Member{ID: "s-1", Backend: "hetzner", Flavor: flavor, State: cluster.MemberCreating}
	data, err := e.backend.Provision(ctx, m)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	m.Data, m.State = data, cluster.MemberReady
	timings := Timings(data)
	for _, phase := range []string{"create", "boot", "bootstrap", "ready", "total"} {
		if _, ok := timings[phase]; !ok {
			t.Errorf("timing %q missing: %v", phase, timings)
		}
	}

	c := cluster.Cluster{ID: "c-abc123", Account: "acme", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	kc, err := e.backend.Claim(ctx, m, c)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	m.State, m.ClusterID = cluster.MemberClaimed, c.ID
	tenant := tenantClient(t, kc.YAML)
	nodes, err := tenant.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "smek-cluster-id=c-abc123"})
	if err != nil || len(nodes.Items) != 1 {
		t.Fatalf("tenant lists its labelled node: got %v, %v", nodes, err)
	}

	tenantRefusesEverything(ctx, t, tenant)

	if err := e.backend.Stop(ctx, m); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := tenant.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		t.Errorf("the API still answers after stop")
	}
	if data, err = e.backend.Start(ctx, m); err != nil {
		t.Fatalf("start: %v", err)
	}
	m.Data = data
	kc, err = e.backend.Credential(ctx, m, c)
	if err != nil {
		t.Fatalf("credential after start: %v", err)
	}
	if _, err := tenantClient(t, kc.YAML).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("tenant after start: %v", err)
	}

	oldCA := mustData(t, m.Data).CA
	reusable, data, err := e.backend.Release(ctx, m)
	if err != nil || !reusable {
		t.Fatalf("release: %v, %v", reusable, err)
	}
	m.Data, m.State, m.ClusterID = data, cluster.MemberReady, ""
	if string(mustData(t, data).CA) == string(oldCA) {
		t.Errorf("the rebuilt server kept the old cluster CA")
	}
	if _, err := tenant.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); err == nil {
		t.Errorf("the old tenant credential still works after release")
	}
	if err := e.backend.Destroy(ctx, m); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	total := e.fake.TotalRequests()
	t.Logf("requests for provision+claim+stop+start+release+destroy: %d %v", total, e.fake.Counts())
	if all, _ := e.client.Server.All(ctx); len(all) != 0 {
		t.Errorf("servers left: %d", len(all))
	}
}

func mustData(t *testing.T, b []byte) data {
	t.Helper()
	d, err := parseData(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tenantRefusesEverything installs, as the tenant, a webhook that refuses
// every write of ConfigMaps, Nodes and tokens it is asked about (it cannot
// be reached, and it fails closed). SMEK's own writes on a start, the node
// label and a fresh TokenRequest, must not be asked about: the policy
// bundle adds its exemption to every tenant webhook, on k3s as on the
// local backend.
func tenantRefusesEverything(ctx context.Context, t *testing.T, tenant kubernetes.Interface) {
	t.Helper()
	url, none, fail := "https://smek-test.invalid/deny", admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Fail
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-everything"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "refuse.example.com", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"*"}, Resources: []string{"configmaps", "nodes", "serviceaccounts/token"}},
			}},
			SideEffects: &none, FailurePolicy: &fail, AdmissionReviewVersions: []string{"v1"},
		}},
	}
	got, err := tenant.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("tenant creates a webhook: %v", err)
	}
	if conds := got.Webhooks[0].MatchConditions; len(conds) != 1 || conds[0].Name != policy.ExemptionCondition {
		t.Errorf("the tenant's webhook came back with match conditions %+v, want SMEK's %s", conds, policy.ExemptionCondition)
	}
	// kube-apiserver observes a new webhook a moment after it is written.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err = tenant.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}, metav1.CreateOptions{})
		if err != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the tenant's webhook never refused the tenant's own write")
		case <-tick.C:
		}
	}
	if !strings.Contains(err.Error(), "refuse.example.com") {
		t.Fatalf("the tenant's own write: got %v, want its webhook's refusal", err)
	}
}

func tenantClient(t *testing.T, kubeconfig []byte) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
