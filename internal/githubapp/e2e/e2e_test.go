package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/sqlite"
	"github.com/smek/action/internal/wire"
)

const (
	secret       = "e2e webhook secret"
	appID        = 99
	installation = 1 // pull_request.closed.json's installation
	fixtures     = "../testdata/webhooks"
)

var appKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func variant(tb testing.TB, name string, edit func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(tb, name), &m); err != nil {
		tb.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	return b
}

// app serves an App and reports finished deliveries.
type app struct {
	url     string
	results chan githubapp.Result
	seq     atomic.Int64
	// wait stops serving and waits until Run has returned.
	wait func()
}

func startApp(tb testing.TB, cfg githubapp.Config) *app {
	return startAppCtx(tb, context.Background(), cfg)
}

// startAppCtx starts an App whose Run ends with ctx.
func startAppCtx(tb testing.TB, ctx context.Context, cfg githubapp.Config) *app {
	tb.Helper()
	a := &app{results: make(chan githubapp.Result, 64)}
	cfg.Secret = []byte(secret)
	cfg.OnDone = func(r githubapp.Result) { a.results <- r }
	ga, err := githubapp.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { ga.Run(ctx); close(done) }()
	srv := httptest.NewServer(ga)
	var once sync.Once
	a.wait = func() { once.Do(func() { srv.Close(); cancel(); <-done }) }
	tb.Cleanup(a.wait)
	a.url = srv.URL + githubapp.WebhookPath
	return a
}

// send posts a signed delivery and returns the status and answer.
func (a *app) send(tb testing.TB, event, id string, body []byte) (int, string) {
	tb.Helper()
	if id == "" {
		id = fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), a.seq.Add(1))
	}
	req, _ := http.NewRequest(http.MethodPost, a.url, bytes.NewReader(body))
	req.Header.Set(githubapp.EventHeader, event)
	req.Header.Set(githubapp.DeliveryHeader, id)
	req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// deliver sends a delivery that must be accepted and waits for its work.
func (a *app) deliver(tb testing.TB, event string, body []byte) githubapp.Result {
	tb.Helper()
	if status, answer := a.send(tb, event, "", body); status != http.StatusAccepted {
		tb.Fatalf("%s: got %d %s, want 202", event, status, answer)
	}
	select {
	case r := <-a.results:
		if r.Err != nil {
			tb.Fatalf("%s: work failed: %v", event, r.Err)
		}
		return r
	case <-time.After(3 * time.Minute):
		tb.Fatalf("%s: no result", event)
		return githubapp.Result{}
	}
}

func TestReplayAfterRestartOnSQLite(t *testing.T) {
	fake := clienttest.NewServer("smek_service")
	defer fake.Close()
	clusters, err := githubapp.NewAPIClusters(fake.URL, "smek_service", nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "smek.db")
	body := fixture(t, "workflow_run.completed.json")
	const id = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, githubapp.Config{Clusters: clusters, Deliveries: db})
	if status, answer := a.send(t, "workflow_run", id, body); status != http.StatusAccepted {
		t.Fatalf("first delivery: got %d %s", status, answer)
	}
	<-a.results
	db.Close()

	// The provisioner restarts: a new App on the same file.
	db2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	a2 := startApp(t, githubapp.Config{Clusters: clusters, Deliveries: db2})
	status, answer := a2.send(t, "workflow_run", id, body)
	if status != http.StatusOK || !strings.Contains(answer, `"duplicate"`) {
		t.Fatalf("replay after restart: got %d %s, want 200 duplicate", status, answer)
	}
	lists := 0
	for _, c := range fake.Calls() {
		if c.Method == http.MethodGet && c.Path == "/v1/clusters" {
			lists++
		}
	}
	if lists != 1 {
		t.Fatalf("cluster listings: got %d, want 1 (the replay did nothing)", lists)
	}
}

// world is a real SMEK server with a service token for the App, account
// acme linked to the installation, account umbrella, and the fake GitHub.
type world struct {
	smek      *smektest.SMEK
	github    *githubfake.Server
	app       *app
	acme      *client.Client
	umbrella  *client.Client
	pemKey    []byte
	clusters  *githubapp.APIClusters
	serviceTk string
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	w := &world{}
	w.smek = smektest.Start(tb, smektest.Options{PoolSize: 1})
	w.serviceTk = w.smek.Token("smek-app", smektest.TokenOptions{Service: true})
	acmeTk := w.smek.Token("acme", smektest.TokenOptions{MaxClusters: 50})
	umbrellaTk := w.smek.Token("umbrella", smektest.TokenOptions{})
	if _, err := w.smek.DB.LinkInstallation(context.Background(), "acme", installation); err != nil {
		tb.Fatal(err)
	}
	var err error
	if w.acme, err = client.New(w.smek.URL, acmeTk); err != nil {
		tb.Fatal(err)
	}
	if w.umbrella, err = client.New(w.smek.URL, umbrellaTk); err != nil {
		tb.Fatal(err)
	}
	w.github = githubfake.New(appID, &appKey().PublicKey)
	tb.Cleanup(w.github.Close)
	w.github.AddInstallation(installation, "Codertocat/Hello-World")
	// chhsia0, who comments in the fixture, may write to the repository.
	w.github.SetRole("Codertocat/Hello-World", "chhsia0", "write")
	w.pemKey = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(appKey())})
	gh, err := githubapp.NewAppClient(appID, w.pemKey, w.github.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if w.clusters, err = githubapp.NewAPIClusters(w.smek.URL, w.serviceTk, nil); err != nil {
		tb.Fatal(err)
	}
	w.app = startApp(tb, githubapp.Config{Clusters: w.clusters, Deliveries: w.smek.DB, GitHub: gh, PublicURL: w.smek.URL})
	return w
}

// createForRun makes an acme cluster as the action would for a run.
func (w *world) createForRun(tb testing.TB, run wire.RunMetadata, keep bool) string {
	tb.Helper()
	email, wait := "ci@example.com", "3m"
	cl, err := w.acme.Create(context.Background(), wire.CreateRequest{NotificationEmail: &email, KeepCluster: &keep, Wait: &wait, Run: &run})
	if err != nil {
		tb.Fatal(err)
	}
	return cl.ClusterID
}

func (w *world) status(tb testing.TB, c *client.Client, id string) string {
	tb.Helper()
	cl, err := c.Get(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return cl.ClusterStatus
}

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	run := wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 289782451, RunAttempt: 1}

	t.Run("workflow_run completed ends the run's cluster, keep-cluster stays", func(t *testing.T) {
		ended := w.createForRun(t, run, false)
		kept := w.createForRun(t, run, true)
		w.app.deliver(t, "workflow_run", fixture(t, "workflow_run.completed.json"))
		if got := w.status(t, w.acme, ended); got != "terminated" && got != "terminating" {
			t.Errorf("cluster of the run: got %s, want terminated", got)
		}
		if got := w.status(t, w.acme, kept); got != "running" {
			t.Errorf("keep-cluster cluster: got %s, want running", got)
		}
	})

	var prCluster string
	t.Run("a PR comment creates a cluster in the linked account", func(t *testing.T) {
		body := variant(t, "issue_comment.created.json", func(m map[string]any) {
			m["installation"] = map[string]any{"id": installation}
			m["repository"] = map[string]any{"id": 186853002, "name": "Hello-World", "full_name": "Codertocat/Hello-World", "owner": map[string]any{"login": "Codertocat"}}
			m["comment"].(map[string]any)["body"] = "/smek create 30"
		})
		w.app.deliver(t, "issue_comment", body)
		cs := w.github.Comments()
		if len(cs) != 1 {
			t.Fatalf("comments: got %+v, want 1", cs)
		}
		if strings.Contains(cs[0].Body, "apiVersion") || strings.Contains(cs[0].Body, "smek_") {
			t.Fatalf("the reply shows a credential:\n%s", cs[0].Body)
		}
		list, err := w.acme.List(context.Background(), client.ListOptions{RepositoryID: 186853002, PullRequest: 3})
		if err != nil || len(list) != 1 {
			t.Fatalf("acme's clusters of PR 3: got %+v, %v; want 1", list, err)
		}
		prCluster = list[0].ClusterID
		if !strings.Contains(cs[0].Body, prCluster) || list[0].KeepCluster {
			t.Fatalf("reply %q does not name %s, or the cluster is kept", cs[0].Body, prCluster)
		}
	})

	t.Run("a comment naming another account's cluster is a not-found", func(t *testing.T) {
		email := "u@example.com"
		other, err := w.umbrella.Create(context.Background(), wire.CreateRequest{NotificationEmail: &email})
		if err != nil {
			t.Fatal(err)
		}
		body := variant(t, "issue_comment.created.json", func(m map[string]any) {
			m["installation"] = map[string]any{"id": installation}
			m["repository"] = map[string]any{"id": 186853002, "name": "Hello-World", "full_name": "Codertocat/Hello-World", "owner": map[string]any{"login": "Codertocat"}}
			m["comment"].(map[string]any)["body"] = "/smek stop " + other.ClusterID
			m["comment"].(map[string]any)["id"] = 7
		})
		w.app.deliver(t, "issue_comment", body)
		cs := w.github.Comments()
		if last := cs[len(cs)-1].Body; !strings.Contains(last, "no cluster "+other.ClusterID) {
			t.Errorf("reply: got %q, want not found", last)
		}
		if got := w.status(t, w.umbrella, other.ClusterID); got != "running" {
			t.Errorf("umbrella's cluster: got %s, want running", got)
		}
	})

	t.Run("closing the PR ends its cluster", func(t *testing.T) {
		if prCluster == "" {
			t.Skip("no PR cluster")
		}
		body := variant(t, "pull_request.closed.json", func(m map[string]any) { m["number"] = 3 })
		w.app.deliver(t, "pull_request", body)
		if got := w.status(t, w.acme, prCluster); got != "terminated" && got != "terminating" {
			t.Errorf("PR cluster: got %s, want terminated", got)
		}
	})
}

// BenchmarkWorkflowRunToTerminated measures the time from a workflow_run
// completed delivery to its cluster terminated on a real SMEK server
// (local backend). Creating the cluster is not timed.
func BenchmarkWorkflowRunToTerminated(b *testing.B) {
	w := newWorld(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		run := wire.RunMetadata{RepositoryID: 300029405, RunID: int64(1_000_000 + i), RunAttempt: 1}
		id := w.createForRun(b, run, false)
		body := variant(b, "workflow_run.completed.json", func(m map[string]any) {
			m["workflow_run"].(map[string]any)["id"] = run.RunID
		})
		b.StartTimer()
		w.app.deliver(b, "workflow_run", body)
		b.StopTimer()
		if got := w.status(b, w.acme, id); got != "terminated" {
			b.Fatalf("cluster %s: got %s, want terminated", id, got)
		}
		b.StartTimer()
	}
}

// BenchmarkWebhookAcceptSQLite is BenchmarkWebhookAccept with deliveries
// recorded in SQLite, as the provisioner does.
func BenchmarkWebhookAcceptSQLite(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "smek.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fake := clienttest.NewServer("smek_service")
	defer fake.Close()
	clusters, _ := githubapp.NewAPIClusters(fake.URL, "smek_service", nil)
	a := startApp(b, githubapp.Config{Clusters: clusters, Deliveries: db, QueueSize: 1 << 16})
	go func() {
		for range a.results {
		}
	}()
	body := fixture(b, "workflow_run.completed.json")
	var seq atomic.Int64
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Each payload differs, as GitHub's do: the same one twice is
			// a duplicate.
			n := seq.Add(1)
			payload := append(fmt.Appendf(nil, `{"bench":%d,`, n), body[1:]...)
			req, _ := http.NewRequest(http.MethodPost, a.url, bytes.NewReader(payload))
			req.Header.Set(githubapp.EventHeader, "workflow_run")
			req.Header.Set(githubapp.DeliveryHeader, fmt.Sprintf("bench-%d", n))
			req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte(secret), payload))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("got %d, want 202", resp.StatusCode)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
