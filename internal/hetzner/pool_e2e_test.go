package hetzner

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/lifecycle"
)

// kubectl runs $SMEK_KUBE_BIN/kubectl with a kubeconfig and returns its
// output.
func kubectl(t *testing.T, kubeconfig []byte, args ...string) (string, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(f, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(kubeBin(t), "kubectl"), append([]string{"--kubeconfig", f, "--request-timeout", "20s"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func mustKubectl(t *testing.T, kubeconfig []byte, args ...string) string {
	t.Helper()
	out, err := kubectl(t, kubeconfig, args...)
	if err != nil {
		t.Fatalf("kubectl %v: %v: %s", args, err, out)
	}
	return out
}

// TestPoolEndToEnd runs the real pool over a SQLite file with the hetzner
// backend against the fake through hcloud-go, every server a simulated
// node with a real control plane reached over SSH: the pool fills from
// nothing; a create claims the member and its kubeconfig works with
// kubectl; stop keeps the disk and start brings the cluster back with a
// fresh kubeconfig; terminate makes the pool rebuild the server from the
// snapshot, and only then is it ready again, with a new CA under which
// the old tenant token is refused; the next tenant finds nothing of the
// first.
func TestPoolEndToEnd(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{machines: true})
	requests := func() int { return w.fake.TotalRequests() }

	// One member at most, so that all requests are this member's.
	r := w.start(runOptions{target: 1, max: 1})
	ms := r.await("the pool filled from nothing", settled(1))
	member := ms[0]
	provisioned := requests()
	life := lifecycle.New(r.db, r.pool, []string{"1.36.3"}, lifecycle.Config{})
	p := cluster.Principal{Account: r.account(), Actor: "token:e2e"}

	created, err := life.Create(ctx, p, cluster.CreateInput{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	c, kc := created.Cluster, created.Kubeconfig.YAML
	if c.MemberID != member.ID || !c.Timings.Warm {
		t.Errorf("create: server %s warm=%v, want the ready member %s, warm", c.MemberID, c.Timings.Warm, member.ID)
	}
	if got := mustKubectl(t, kc, "get", "nodes", "-l", "smek-cluster-id="+string(c.ID), "-o", "name"); !strings.HasPrefix(got, "node/") {
		t.Errorf("kubectl get nodes: %q", got)
	}
	mustKubectl(t, kc, "create", "configmap", "tenant-data", "--from-literal=secret=first-tenant")
	claimedReqs := requests()

	if _, err := life.Stop(ctx, p, c.ID, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := serverStatus(w, mustData(t, member.Data).ServerID); st != "off" {
		t.Errorf("server after stop: %s, want off", st)
	}
	if out, err := kubectl(t, kc, "get", "configmaps"); err == nil {
		t.Errorf("kubectl answered while stopped: %s", out)
	}
	started, err := life.Start(ctx, p, c.ID)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	kc2 := started.Kubeconfig.YAML
	if got := mustKubectl(t, kc2, "get", "configmap", "tenant-data", "-o", "jsonpath={.data.secret}"); got != "first-tenant" {
		t.Errorf("the disk was not kept across stop/start: got %q", got)
	}
	stoppedStarted := requests()

	if _, err := life.Terminate(ctx, p, c.ID, "api"); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	r.pool.Nudge()
	ms = r.await("the member rebuilt and ready", func(ms []cluster.Member) bool {
		return settled(1)(ms) && memberStates(ms)[member.ID] == cluster.MemberReady
	})
	released := requests()
	var rebuilt cluster.Member
	for _, m := range ms {
		if m.ID == member.ID {
			rebuilt = m
		}
	}
	tr := transitions(t, r.db, member.ID)
	checkNeverDirtyToReady(t, r.db, member.ID)
	if want := "dirty→rebuilding"; !strings.Contains(strings.Join(tr, " "), want) || tr[len(tr)-1] != "rebuilding→ready" {
		t.Errorf("transitions: got %v, want … %s, rebuilding→ready", tr, want)
	}
	if n := w.fake.ActionCounts()["rebuild_server"]; n != 1 {
		t.Errorf("rebuilds: got %d, want 1", n)
	}
	before, after := mustData(t, member.Data), mustData(t, rebuilt.Data)
	if after.ServerID != before.ServerID || after.Image != w.image.ID || bytes.Equal(after.CA, before.CA) {
		t.Errorf("rebuild: server %d→%d, image %d (golden %d), CA changed=%v", before.ServerID, after.ServerID, after.Image, w.image.ID, !bytes.Equal(after.CA, before.CA))
	}
	if _, ok := Timings(rebuilt.Data)["rebuild"]; !ok {
		t.Errorf("no rebuild timing: %v", Timings(rebuilt.Data))
	}
	checkOldTokenRefused(t, kc2, after)

	// The next tenant gets the rebuilt server and nothing of the first.
	next, err := life.Create(ctx, p, cluster.CreateInput{})
	if err != nil {
		t.Fatalf("second create: %v", err)
	}
	if next.Cluster.MemberID != member.ID {
		t.Errorf("second create: server %s, want the rebuilt %s", next.Cluster.MemberID, member.ID)
	}
	if out, err := kubectl(t, next.Kubeconfig.YAML, "get", "configmap", "tenant-data"); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("the first tenant's data survived the rebuild: %v %s", err, out)
	}
	r.checkInventory()

	t.Logf("hetzner requests: fill (provision, incl. ssh key, firewall, snapshot list, start-up reconcile) %d, claim %d, stop+start %d, release→ready %d; total lifecycle %d; counts %v",
		provisioned, claimedReqs-provisioned, stoppedStarted-claimedReqs, released-stoppedStarted, released, w.fake.Counts())
	if claimedReqs != provisioned {
		t.Errorf("a warm claim made %d Hetzner requests, want 0", claimedReqs-provisioned)
	}
	// Per lifecycle, setup once per process (ssh key, firewall) and the
	// start-up reconcile aside.
	if perLifecycle := released - w.fake.Counts()["GET /ssh_keys"] - w.fake.Counts()["POST /ssh_keys"] - w.fake.Counts()["GET /firewalls"] - w.fake.Counts()["POST /firewalls"] - w.fake.Counts()["GET /servers"]; perLifecycle > 12 {
		t.Errorf("requests per cluster lifecycle: %d, goal ≤ 12", perLifecycle)
	}
}

// checkOldTokenRefused presents the tenant token of the cluster before the
// rebuild to the rebuilt server's API (its new address and CA): refused.
func checkOldTokenRefused(t *testing.T, oldKubeconfig []byte, rebuilt data) {
	t.Helper()
	old, err := clientcmd.Load(oldKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for _, a := range old.AuthInfos {
		token = a.Token
	}
	if token == "" {
		t.Fatal("the tenant kubeconfig holds no token")
	}
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: rebuilt.APIServer, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: rebuilt.CA}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("old tenant token on the rebuilt server: got %v, want 401 Unauthorized", err)
	}
}
