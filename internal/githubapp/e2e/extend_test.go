package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/wire"
)

// heldKubeconfig is a kubeconfig as a CI job holds it: written once, at
// create, and never fetched again.
type heldKubeconfig struct {
	doc   []byte
	token string
}

func hold(t *testing.T, doc string) heldKubeconfig {
	t.Helper()
	cfg, err := clientcmd.Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	h := heldKubeconfig{doc: []byte(doc)}
	for _, a := range cfg.AuthInfos {
		h.token = a.Token
	}
	return h
}

// expiry is the exp claim of the held token (the kube-apiserver's JWT).
func (h heldKubeconfig) expiry(t *testing.T) time.Time {
	t.Helper()
	parts := strings.Split(h.token, ".")
	if len(parts) != 3 {
		t.Fatal("the kubeconfig's token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Exp == 0 {
		t.Fatalf("token claims %s: %v", payload, err)
	}
	return time.Unix(c.Exp, 0)
}

// use lists the namespaces with the held kubeconfig.
func (h heldKubeconfig) use(t *testing.T) error {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(h.doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 20 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	return err
}

// TestExtendFromAComment is issue 13's item 12 for the App: a job holds
// the kubeconfig of a cluster made with minutes-to-live 15; `/smek extend
// <id> 60` on the pull request moves the deadline, and the job's file,
// which the App cannot reach, stays valid until the new deadline. The
// reply says until when and shows no credential. When the cluster ends,
// the held kubeconfig stops working.
func TestExtendFromAComment(t *testing.T) {
	w := newWorld(t)
	email, wait, minutes, keep := "ci@example.com", "3m", 15, false
	cl, err := w.acme.Create(context.Background(), wire.CreateRequest{
		NotificationEmail: &email, Wait: &wait, MinutesToLive: &minutes, KeepCluster: &keep,
		Run: &wire.RunMetadata{Repository: "Codertocat/Hello-World", RepositoryID: 186853002, RunID: 77, RunAttempt: 1, PullRequest: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	job := hold(t, cl.Kubeconfig)
	if err := job.use(t); err != nil {
		t.Fatalf("the job's kubeconfig: %v", err)
	}

	body := variant(t, "issue_comment.created.json", func(m map[string]any) {
		m["installation"] = map[string]any{"id": installation}
		m["repository"] = map[string]any{"id": 186853002, "name": "Hello-World", "full_name": "Codertocat/Hello-World", "owner": map[string]any{"login": "Codertocat"}}
		m["comment"].(map[string]any)["body"] = "/smek extend " + cl.ClusterID + " 60"
		m["comment"].(map[string]any)["id"] = 4242
	})
	w.app.deliver(t, "issue_comment", body)
	cs := w.github.Comments()
	if len(cs) == 0 {
		t.Fatal("no reply")
	}
	reply := cs[len(cs)-1].Body
	t.Logf("reply: %s", reply)

	extended, err := w.acme.Get(context.Background(), cl.ClusterID)
	if err != nil {
		t.Fatal(err)
	}
	if got := extended.ExpiresAt.Sub(cl.ExpiresAt); got < 59*time.Minute || got > 61*time.Minute {
		t.Fatalf("the comment moved the deadline by %s, want an hour", got)
	}
	deadline := extended.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if !strings.Contains(reply, cl.ClusterID) || !strings.Contains(reply, "expires "+deadline) {
		t.Errorf("reply %q does not say until when %s runs (%s)", reply, cl.ClusterID, deadline)
	}
	if !strings.Contains(reply, "keep working until then") {
		t.Errorf("reply %q does not say that handed-out kubeconfigs keep working", reply)
	}
	if strings.Contains(reply, "apiVersion") || strings.Contains(reply, job.token) || strings.Contains(reply, "smek_") {
		t.Fatalf("the reply shows a credential:\n%s", reply)
	}

	if exp := job.expiry(t); exp.Before(extended.ExpiresAt) {
		t.Errorf("the job's kubeconfig expires at %s, before the new deadline %s", exp, extended.ExpiresAt)
	}
	if err := job.use(t); err != nil {
		t.Errorf("the job's kubeconfig after the extend: %v", err)
	}

	// The cluster's end, not the token's expiry, is what ends the access:
	// the pool destroys the terminated cluster's control plane (the
	// hetzner backend rebuilds the server with a new CA and signing key).
	if _, err := w.acme.Terminate(context.Background(), cl.ClusterID); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(time.Minute)
	for job.use(t) == nil {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatal("the job's kubeconfig still works a minute after the cluster was terminated")
		}
	}
}
