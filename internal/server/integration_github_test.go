package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/fake/githubfake"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/webhook"
	"github.com/smek/action/internal/wire"
)

const (
	ghSecret       = "integration webhook secret"
	ghAppID        = 4711
	ghInstallation = 31337
	// ghRepo is the repository of issue_comment.created.json.
	ghRepo   = "chhsia0/knative-route-demo"
	ghRepoID = 199540710
	// webhookFixtures are the real payloads of
	// /work/shared/fixtures/github-webhooks, as the repository keeps them.
	webhookFixtures = "../githubapp/testdata/webhooks"
	// workTimeout bounds the wait for a delivery's work, a cold create
	// of a real control plane included.
	workTimeout = 3 * time.Minute
)

var ghAppKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// webhookFixture returns a real payload with edit applied.
func webhookFixture(t testing.TB, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(webhookFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return b
}

// workflowRunCompleted is workflow_run.completed.json for another run.
func workflowRunCompleted(t testing.TB, run wire.RunMetadata) []byte {
	return webhookFixture(t, "workflow_run.completed.json", func(m map[string]any) {
		m["repository"].(map[string]any)["id"] = run.RepositoryID
		wr := m["workflow_run"].(map[string]any)
		wr["id"], wr["run_attempt"] = run.RunID, run.RunAttempt
	})
}

// deliver posts a webhook delivery signed with secret (unsigned when
// secret is empty) and returns the status and answer.
func deliver(t testing.TB, url, secret, event, delivery string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(githubapp.EventHeader, event)
	req.Header.Set(githubapp.DeliveryHeader, delivery)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(githubapp.SignatureHeader, githubapp.Sign([]byte(secret), body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// accepted checks a 202 answer to a delivery.
func accepted(t testing.TB, status int, body []byte) {
	t.Helper()
	var a githubapp.Answer
	if err := json.Unmarshal(body, &a); status != http.StatusAccepted || err != nil || a.Status != "accepted" {
		t.Fatalf("delivery: %d %s, want 202 accepted", status, body)
	}
}

// results hands out the App's finished deliveries by id.
type results struct {
	mu      sync.Mutex
	waiting map[string]chan githubapp.Result
}

func newResults() *results { return &results{waiting: map[string]chan githubapp.Result{}} }

func (r *results) ch(delivery string) chan githubapp.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.waiting[delivery]
	if !ok {
		c = make(chan githubapp.Result, 1)
		r.waiting[delivery] = c
	}
	return c
}

// done is the App's OnDone hook.
func (r *results) done(res githubapp.Result) { r.ch(res.Delivery) <- res }

// wait waits for a delivery's work to end and fails unless it succeeded.
func (r *results) wait(t testing.TB, delivery string) githubapp.Result {
	t.Helper()
	res := waitFor(t, r.ch(delivery), workTimeout, "end of the work of delivery "+delivery)
	if res.Err != nil {
		t.Fatalf("delivery %s (%s): work failed after %d attempts: %v", delivery, res.Event, res.Attempts, res.Err)
	}
	return res
}

// createForRun creates a cluster over /v1 as the action does in a run:
// not kept (keep-cluster clusters outlive their run).
func createForRun(t testing.TB, smek *smektest.SMEK, token string, run wire.RunMetadata) wire.Cluster {
	t.Helper()
	keep := false
	b, err := json.Marshal(wire.CreateRequest{Run: &run, KeepCluster: &keep})
	if err != nil {
		t.Fatal(err)
	}
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, string(b))
	if c.Run == nil || c.Run.RunID != run.RunID || c.Run.Verified {
		t.Fatalf("created cluster's run metadata %+v, want run %d unverified", c.Run, run.RunID)
	}
	return c
}

// kubeconfigSecrets returns the credential values of a cluster's
// kubeconfig (token, keys, certificates) as its owner fetches it.
func kubeconfigSecrets(t testing.TB, smek *smektest.SMEK, token, id string) []string {
	t.Helper()
	status, b := call(t, "GET", smek.URL+"/v1/clusters/"+id+"/kubeconfig", token, "", "application/yaml")
	if status != 200 {
		t.Fatalf("kubeconfig of %s: %d %s", id, status, b)
	}
	var secrets []string
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok && (k == "token" || strings.HasSuffix(k, "-data")) && len(v) > 16 {
			secrets = append(secrets, v)
		}
	}
	if len(secrets) == 0 {
		t.Fatalf("kubeconfig of %s holds no credential:\n%s", id, b)
	}
	return secrets
}

// terminatedBy returns the event that ended a cluster.
func terminatedBy(t testing.TB, smek *smektest.SMEK, token, id string) wire.Event {
	t.Helper()
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+id+"/events", token, "")
	for _, e := range evs.Events {
		if e.To == "terminated" {
			return e
		}
	}
	t.Fatalf("cluster %s has no event to terminated: %+v", id, evs.Events)
	return wire.Event{}
}

// TestIntegrationGitHubAppEmbedded drives the App that `provisioner serve
// --github-webhook-secret` embeds, at /github/webhook of the real server:
// signatures, a PR comment command answered through the fake GitHub, the
// cleanup of a finished workflow run recorded as the webhook's doing, and
// replays.
func TestIntegrationGitHubAppEmbedded(t *testing.T) {
	github := githubfake.New(ghAppID, &ghAppKey().PublicKey)
	t.Cleanup(github.Close)
	github.AddInstallation(ghInstallation, ghRepo)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(ghAppKey())})
	gh, err := githubapp.NewAppClient(ghAppID, pemKey, github.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	const publicURL = "https://smek.example.com"
	smek := smektest.Start(t, smektest.Options{Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHub = gh
		c.GitHubOnDone = res.done
		c.PublicURL = publicURL
		c.OpsAddr = "127.0.0.1:0"
	}})
	acme := smek.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	if _, err := smek.DB.LinkInstallation(context.Background(), "acme", ghInstallation); err != nil {
		t.Fatal(err)
	}
	hook := smek.URL + githubapp.WebhookPath

	t.Run("bad or missing signature is 401", func(t *testing.T) {
		body := workflowRunCompleted(t, wire.RunMetadata{RepositoryID: 1, RunID: 1, RunAttempt: 1})
		status, b := deliver(t, hook, "not the secret", "workflow_run", "forged-1", body)
		problemOf(t, status, b, 401, "unauthorized")
		status, b = deliver(t, hook, "", "workflow_run", "forged-2", body)
		problemOf(t, status, b, 401, "unauthorized")
		// A forged delivery id was not recorded: the real one is new.
		if _, fresh, err := smek.DB.AcceptDelivery(context.Background(), webhook.Received{ID: "forged-1", Event: "workflow_run"}); err != nil || !fresh {
			t.Errorf("forged delivery id recorded: new=%t, %v", fresh, err)
		}
	})

	var prCluster wire.Cluster
	t.Run("a /smek create comment makes a cluster in the linked account", func(t *testing.T) {
		body := webhookFixture(t, "issue_comment.created.json", func(m map[string]any) {
			m["installation"] = map[string]any{"id": ghInstallation}
			m["comment"].(map[string]any)["body"] = "/smek create 30"
		})
		status, b := deliver(t, hook, ghSecret, "issue_comment", "comment-1", body)
		accepted(t, status, b)
		res.wait(t, "comment-1")

		list := mustJSON[wire.ClusterList](t, 200, "GET",
			fmt.Sprintf("%s/v1/clusters?repository-id=%d&pull-request=3", smek.URL, ghRepoID), acme, "")
		if len(list.Clusters) != 1 {
			t.Fatalf("acme's clusters of PR 3: %+v, want 1", list.Clusters)
		}
		prCluster = list.Clusters[0]
		if prCluster.Account != "acme" || prCluster.MinutesToLive != 30 || prCluster.ClusterStatus != "running" ||
			prCluster.Run == nil || prCluster.Run.InstallationID != ghInstallation {
			t.Errorf("PR cluster %+v (run %+v), want acme's, 30 minutes, running, of installation %d", prCluster, prCluster.Run, ghInstallation)
		}
		comments := github.Comments()
		if len(comments) != 1 {
			t.Fatalf("GitHub got comments %+v, want one reply", comments)
		}
		reply := comments[0]
		if reply.Repo != ghRepo || reply.Number != 3 || reply.Installation != ghInstallation {
			t.Errorf("reply went to %s#%d as installation %d", reply.Repo, reply.Number, reply.Installation)
		}
		if !strings.Contains(reply.Body, prCluster.ClusterID) || !strings.Contains(reply.Body, publicURL+"/v1/clusters/"+prCluster.ClusterID+"/kubeconfig") {
			t.Errorf("reply does not name the cluster and where to fetch its kubeconfig:\n%s", reply.Body)
		}
		// The reply is public: no kubeconfig, no credential of any kind.
		for _, secret := range append(kubeconfigSecrets(t, smek, acme, prCluster.ClusterID), "apiVersion", "clusters:", "smek_") {
			if strings.Contains(reply.Body, secret) {
				t.Errorf("the reply shows %.20q...:\n%s", secret, reply.Body)
			}
		}
		var reactions []string
		for _, r := range github.Reactions() {
			reactions = append(reactions, r.Content)
		}
		if strings.Join(reactions, ",") != "eyes,rocket" {
			t.Errorf("reactions %v, want eyes then rocket", reactions)
		}
	})

	run := wire.RunMetadata{Repository: "octo-org/octo-repo", RepositoryID: 300029405, RunID: 7_000_001, RunAttempt: 2}
	var runCluster wire.Cluster
	const runDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	t.Run("workflow_run completed terminates the run's cluster", func(t *testing.T) {
		runCluster = createForRun(t, smek, acme, run)
		status, b := deliver(t, hook, ghSecret, "workflow_run", runDelivery, workflowRunCompleted(t, run))
		accepted(t, status, b)
		res.wait(t, runDelivery)

		got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+runCluster.ClusterID, acme, "")
		if got.ClusterStatus != "terminated" {
			t.Errorf("run's cluster is %s, want terminated", got.ClusterStatus)
		}
		if e := terminatedBy(t, smek, acme, runCluster.ClusterID); e.Cause != "webhook" || e.Actor != "github-app" {
			t.Errorf("terminated by cause %q actor %q, want webhook github-app", e.Cause, e.Actor)
		}
		// Another run's cluster — the PR's — is left running.
		if prCluster.ClusterID != "" {
			if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+prCluster.ClusterID, acme, ""); got.ClusterStatus != "running" {
				t.Errorf("PR cluster is %s, want running", got.ClusterStatus)
			}
		}
		// The delivery is counted when its work ends.
		_, metrics := call(t, "GET", smek.OpsURL()+"/metrics", "", "", "")
		if want := `smek_webhook_deliveries_total{event="workflow_run",result="handled"} 1`; !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	})

	t.Run("a replayed delivery is a no-op", func(t *testing.T) {
		if runCluster.ClusterID == "" {
			t.Skip("no run cluster")
		}
		before := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+runCluster.ClusterID+"/events", acme, "")
		status, b := deliver(t, hook, ghSecret, "workflow_run", runDelivery, workflowRunCompleted(t, run))
		var a githubapp.Answer
		if err := json.Unmarshal(b, &a); status != 200 || err != nil || a.Status != "duplicate" || a.Delivery != runDelivery {
			t.Fatalf("replay: %d %s, want 200 duplicate", status, b)
		}
		// The signature covers the body, not the delivery id: the same
		// payload under a new id is the same delivery.
		status, b = deliver(t, hook, ghSecret, "workflow_run", "replayed-under-a-new-id", workflowRunCompleted(t, run))
		if err := json.Unmarshal(b, &a); status != 200 || err != nil || a.Status != "duplicate" {
			t.Fatalf("payload under a new id: %d %s, want 200 duplicate", status, b)
		}
		after := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+runCluster.ClusterID+"/events", acme, "")
		if len(after.Events) != len(before.Events) {
			t.Errorf("the replay changed the cluster's events: %d → %d", len(before.Events), len(after.Events))
		}
	})
}

// standaloneApp is the `app` process: githubapp.New over the provisioner's
// /v1 API and delivery route with a service token, as app/main.go's run
// builds it, served by httptest.
type standaloneApp struct {
	url     string
	results *results
	stop    func()
}

func startStandaloneApp(t testing.TB, smekURL, token string) *standaloneApp {
	t.Helper()
	clusters, err := githubapp.NewAPIClusters(smekURL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := githubapp.NewDeliveryClient(smekURL, token, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a := &standaloneApp{results: newResults()}
	app, err := githubapp.New(githubapp.Config{
		Secret: []byte(ghSecret), Clusters: clusters, Deliveries: deliveries, PublicURL: smekURL, OnDone: a.results.done,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+githubapp.WebhookPath, app)
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	var once sync.Once
	a.stop = func() { once.Do(func() { srv.Close(); cancel(); <-done }) }
	t.Cleanup(a.stop)
	a.url = srv.URL + githubapp.WebhookPath
	return a
}

// TestIntegrationGitHubAppStandalone runs the App as its own process
// against the real server with a service token: it ends a finished run's
// cluster through /v1, and its deliveries are kept by the server, so that a
// fresh App (after a restart) still treats a replay as a duplicate.
func TestIntegrationGitHubAppStandalone(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{})
	service := smek.Token("smek-app", smektest.TokenOptions{Service: true})
	acme := smek.Token("acme", smektest.TokenOptions{})
	deliveries := smek.URL + githubapp.DeliveriesPath

	// Without --github-webhook-secret the provisioner serves no webhook.
	status, b := deliver(t, smek.URL+githubapp.WebhookPath, ghSecret, "ping", "p-1", webhookFixture(t, "ping.json", nil))
	problemOf(t, status, b, 404, "not-found")

	run := wire.RunMetadata{RepositoryID: 300029405, RunID: 7_000_002, RunAttempt: 1}
	c := createForRun(t, smek, acme, run)
	const delivery = "a1b2c3d4-0000-4000-8000-standalone01"
	app := startStandaloneApp(t, smek.URL, service)
	status, b = deliver(t, app.url, ghSecret, "workflow_run", delivery, workflowRunCompleted(t, run))
	accepted(t, status, b)
	app.results.wait(t, delivery)
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, acme, ""); got.ClusterStatus != "terminated" {
		t.Errorf("run's cluster is %s, want terminated", got.ClusterStatus)
	}
	e := terminatedBy(t, smek, acme, c.ClusterID)
	if e.Cause != "webhook" || !strings.HasPrefix(e.Actor, "token:") {
		t.Errorf("the standalone App's terminate is recorded as cause %q actor %q, want webhook by its service token", e.Cause, e.Actor)
	}

	// The App restarts with no state of its own: the server remembers.
	app.stop()
	app2 := startStandaloneApp(t, smek.URL, service)
	status, b = deliver(t, app2.url, ghSecret, "workflow_run", delivery, workflowRunCompleted(t, run))
	var a githubapp.Answer
	if err := json.Unmarshal(b, &a); status != 200 || err != nil || a.Status != "duplicate" {
		t.Fatalf("replay to a restarted App: %d %s, want 200 duplicate", status, b)
	}
	// The server knows the payload too: under a new id it is a duplicate.
	status, b = deliver(t, app2.url, ghSecret, "workflow_run", "a1b2c3d4-0000-4000-8000-standalone02", workflowRunCompleted(t, run))
	if err := json.Unmarshal(b, &a); status != 200 || err != nil || a.Status != "duplicate" {
		t.Fatalf("the payload under a new id to a restarted App: %d %s, want 200 duplicate", status, b)
	}

	// The delivery route itself: service tokens only.
	record := `{"id": "` + delivery + `", "event": "workflow_run"}`
	status, b = call(t, "POST", deliveries, service, record, "application/json")
	if status != 409 {
		t.Errorf("recording a seen delivery: %d %s, want 409", status, b)
	}
	status, b = call(t, "POST", deliveries, service, `{"id": "fresh-1", "event": "ping"}`, "application/json")
	if status != 201 {
		t.Errorf("recording a new delivery: %d %s, want 201", status, b)
	}
	status, b = call(t, "POST", deliveries, acme, `{"id": "fresh-2", "event": "ping"}`, "application/json")
	problemOf(t, status, b, 403, "forbidden")
	status, b = call(t, "POST", deliveries, "", `{"id": "fresh-3", "event": "ping"}`, "application/json")
	problemOf(t, status, b, 401, "unauthorized")
	// What a refused caller sent was not recorded.
	status, _ = call(t, "POST", deliveries, service, `{"id": "fresh-2", "event": "ping"}`, "application/json")
	if status != 201 {
		t.Errorf("fresh-2 after the refused record: %d, want 201 (new)", status)
	}
	// The rest of the route, which the App resumes its work from: service
	// tokens only too.
	if list := mustJSON[githubapp.DeliveryList](t, 200, "GET", deliveries, service, ""); len(list.Deliveries) != 0 {
		t.Errorf("pending deliveries: got %+v, want none (all done)", list.Deliveries)
	}
	status, b = call(t, "GET", deliveries, acme, "", "")
	problemOf(t, status, b, 403, "forbidden")
	status, b = call(t, "PATCH", deliveries+"/fresh-1", acme, `{"state": "given-up"}`, "")
	problemOf(t, status, b, 403, "forbidden")
	status, b = call(t, "PATCH", deliveries+"/fresh-1", service, `{"state": "accepted"}`, "")
	problemOf(t, status, b, 409, "conflict")
	status, b = call(t, "GET", deliveries+"/fresh-1", service, "", "")
	problemOf(t, status, b, 404, "not-found")
}
