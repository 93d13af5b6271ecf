package diagnostics_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/smek/action/internal/kube/diagnostics"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// Values that must never reach a bundle.
const (
	secretValue = "s3cret-diagnostics-value-7f2c"
	envValue    = "env-diagnostics-value-91ab"
)

// TestCollectOnNode runs one cluster with a real kubelet node, gives it a
// crash-looping pod, a chatty one, one that cannot be scheduled, a Secret
// and an env value, and checks the bundles Collect and the API make of it.
func TestCollectOnNode(t *testing.T) {
	bin := smektest.KubeBin(t)
	if err := local.CheckNodeSupport(bin); err != nil {
		if os.Getenv("SMEK_REQUIRE_NODES") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Configure: func(c *server.Config) { c.LocalNodes = "on" }})
	token := smek.Token("tenant", smektest.TokenOptions{})
	c := createCluster(t, smek.URL, token)
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(c.Kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	setUp(ctx, t, cs)

	// secrets are what no bundle may hold: the values, the tenant's
	// token, SMEK's token, and any service-account token (a JWT).
	secrets := []string{secretValue, envValue, cfg.BearerToken, token, "eyJhbGciOi"}

	t.Run("bundle", func(t *testing.T) {
		files := inCrashLoop(ctx, t, cs, func() map[string]string { return collect(t, cfg, diagnostics.Limits{}) })
		noSecrets(t, files, secrets)
		checkCrash(t, files)
		for _, want := range []string{"pod kube-system/", "pod diag/chatty", "image=docker.io/library/busybox:latest"} {
			if !strings.Contains(files["pods.txt"], want) {
				t.Errorf("pods.txt has no %q:\n%s", want, files["pods.txt"])
			}
		}
		if !strings.Contains(files["nodes.txt"], "condition Ready=True") || !strings.Contains(files["nodes.txt"], "kubelet: v") {
			t.Errorf("nodes.txt:\n%s", files["nodes.txt"])
		}
		checkEventsSorted(t, files["events.txt"])
		s := summaryOf(t, files)
		if f := failingPod(s, "diag", "unscheduled"); f == nil || f.Reason != "Unschedulable" || !strings.Contains(f.Message, "node affinity/selector") {
			t.Errorf("unscheduled pod in the summary: %+v", f)
		}
		if f := failingPod(s, "diag", "chatty"); f != nil {
			t.Errorf("a healthy pod is failing: %+v", f)
		}
		if s.Truncated {
			t.Errorf("truncated with default limits: %v", s.TruncatedBecause)
		}
		if _, ok := files["errors.txt"]; ok {
			t.Errorf("errors.txt:\n%s", files["errors.txt"])
		}
		if got := strings.Count(files["logs/diag/chatty/chatty.log"], "\n"); got != diagnostics.DefaultTailLines {
			t.Errorf("chatty.log has %d lines, want the last %d", got, diagnostics.DefaultTailLines)
		}
	})

	t.Run("through the API", func(t *testing.T) {
		files := inCrashLoop(ctx, t, cs, func() map[string]string {
			req, err := http.NewRequestWithContext(ctx, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/diagnostics?tail-lines=5", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != wire.MediaGzip {
				t.Fatalf("status %d, %s: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			return untar(t, body)
		})
		noSecrets(t, files, secrets)
		checkCrash(t, files)
		if got := files["logs/diag/chatty/chatty.log"]; strings.Count(got, "\n") != 5 || !strings.HasSuffix(got, "line 4999 of a chatty container\n") {
			t.Errorf("chatty.log with tail-lines=5: %q", got)
		}
	})

	t.Run("log limit", func(t *testing.T) {
		files := inCrashLoop(ctx, t, cs, func() map[string]string { return collect(t, cfg, diagnostics.Limits{LogBytes: 1000}) })
		if got := len(files["logs/diag/chatty/chatty.log"]); got != 1000 {
			t.Errorf("chatty.log is %d bytes, want the limit 1000", got)
		}
		s := summaryOf(t, files)
		if !s.Truncated || !strings.Contains(strings.Join(s.TruncatedBecause, ";"), "cut at 1000 bytes") {
			t.Errorf("summary does not say logs were cut: %+v", s)
		}
		checkCrash(t, files)
	})

	t.Run("total limit", func(t *testing.T) {
		const total = 6000
		files := inCrashLoop(ctx, t, cs, func() map[string]string { return collect(t, cfg, diagnostics.Limits{TotalBytes: total}) })
		counted := 0
		for name, data := range files {
			if name != "summary.json" && name != "summary.md" && name != "errors.txt" {
				counted += len(data)
			}
		}
		if counted > total {
			t.Errorf("%d bytes of listings and logs, limit %d", counted, total)
		}
		s := summaryOf(t, files)
		if !s.Truncated || !strings.Contains(strings.Join(s.TruncatedBecause, ";"), "total limit") {
			t.Errorf("summary does not say the total limit was reached: %+v", s)
		}
		if !strings.Contains(files["summary.md"], "Truncated:") {
			t.Errorf("summary.md does not say so:\n%s", files["summary.md"])
		}
		// The summary is whole: the crash is listed even without its logs.
		if f := failingPod(s, "diag", "crash"); f == nil || f.Reason != "CrashLoopBackOff" {
			t.Errorf("crash in the summary: %+v", f)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		// The context ends when the first log is asked for: the
		// listings are in, the logs are not, and errors.txt says why.
		cut := rest.CopyConfig(cfg)
		lctx, lcancel := context.WithCancel(ctx)
		defer lcancel()
		cut.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if strings.HasSuffix(r.URL.Path, "/log") {
					lcancel()
				}
				return rt.RoundTrip(r)
			})
		})
		var buf bytes.Buffer
		if err := diagnostics.Collect(lctx, cut, &buf, diagnostics.Limits{}); err != nil {
			t.Fatal(err)
		}
		files := untar(t, buf.Bytes())
		if !strings.Contains(files["pods.txt"], "pod diag/crash") {
			t.Error("the partial bundle lost pods.txt")
		}
		for name := range files {
			if strings.HasPrefix(name, "logs/") {
				t.Errorf("a log after the context ended: %s", name)
			}
		}
		if !strings.Contains(files["errors.txt"], "context canceled") || !strings.Contains(files["errors.txt"], "container logs not read") {
			t.Errorf("errors.txt:\n%s", files["errors.txt"])
		}
		if s := summaryOf(t, files); s.Errors == 0 {
			t.Errorf("the summary counts no errors: %+v", s)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func createCluster(t *testing.T, url, token string) wire.Cluster {
	t.Helper()
	req, err := http.NewRequest("POST", url+"/v1/clusters", strings.NewReader(`{"wait": "3m"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", wire.MediaJSON)
	req.Header.Set("Accept", wire.MediaJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c wire.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d, %v", resp.StatusCode, err)
	}
	return c
}

// setUp makes the workloads and waits until the crash loops and the chatty
// pod has logged.
func setUp(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "diag"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = cs.CoreV1().Secrets("diag").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": secretValue},
	}, metav1.CreateOptions{})
	mustCreate(err)
	pod := func(name, script string, mod func(*corev1.Pod)) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "diag"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: name, Image: local.BusyboxImage, Command: []string{"sh", "-c", script},
				Env: []corev1.EnvVar{{Name: "PASSWORD", Value: envValue}},
			}}},
		}
		if mod != nil {
			mod(p)
		}
		_, err := cs.CoreV1().Pods("diag").Create(ctx, p, metav1.CreateOptions{})
		mustCreate(err)
	}
	pod("crash", "echo boom; exit 3", nil)
	pod("chatty", `i=0; while [ $i -lt 5000 ]; do echo "line $i of a chatty container"; i=$((i+1)); done; exec sleep 3600`, nil)
	pod("unscheduled", "true", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"smek.invalid/none": "none"} })

	// A guard against a cluster that never gets there, not a timing.
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		logs, err := cs.CoreV1().Pods("diag").GetLogs("chatty", &corev1.PodLogOptions{TailLines: new(int64(1))}).DoRaw(ctx)
		return err == nil && string(logs) == "line 4999 of a chatty container\n", nil
	})
	if err != nil {
		t.Fatalf("the chatty log: %v", err)
	}
}

// waitCrashLoop waits until the crash pod has restarted and waits in its
// back-off.
func waitCrashLoop(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	t.Helper()
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		crash, err := cs.CoreV1().Pods("diag").Get(ctx, "crash", metav1.GetOptions{})
		if err != nil || len(crash.Status.ContainerStatuses) == 0 {
			return false, nil
		}
		s := crash.Status.ContainerStatuses[0]
		return s.RestartCount >= 1 && s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff", nil
	})
	if err != nil {
		t.Fatalf("the crash loop: %v", err)
	}
}

// inCrashLoop collects until the bundle caught the crash pod in its
// back-off: between two back-offs the container runs for a moment (the
// summary then says Restarted), and the kubelet may report that late.
func inCrashLoop(ctx context.Context, t *testing.T, cs kubernetes.Interface, collect func() map[string]string) map[string]string {
	t.Helper()
	for range 5 {
		waitCrashLoop(ctx, t, cs)
		files := collect()
		if f := failingPod(summaryOf(t, files), "diag", "crash"); f != nil && f.Reason == "CrashLoopBackOff" {
			return files
		}
		t.Logf("the bundle caught the crash pod out of its back-off:\n%s", files["summary.md"])
	}
	t.Fatal("no bundle caught the crash pod in its back-off")
	return nil
}

func collect(t *testing.T, cfg *rest.Config, lim diagnostics.Limits) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var buf bytes.Buffer
	start := time.Now()
	if err := diagnostics.Collect(ctx, cfg, &buf, lim); err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	size := 0
	for _, data := range files {
		size += len(data)
	}
	t.Logf("bundle: %d files, %d bytes, %d gzipped, collected in %s", len(files), size, buf.Len(), time.Since(start).Round(time.Millisecond))
	return files
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s is not a regular file", hdr.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = string(data)
	}
}

func noSecrets(t *testing.T, files map[string]string, secrets []string) {
	t.Helper()
	for name, data := range files {
		for _, s := range secrets {
			if s != "" && strings.Contains(data, s) {
				t.Errorf("%s holds a secret (%.6s...)", name, s)
			}
		}
	}
}

// checkCrash checks what the bundle says of the crash-looping pod.
func checkCrash(t *testing.T, files map[string]string) {
	t.Helper()
	if got := files["logs/diag/crash/crash.previous.log"]; got != "boom\n" {
		t.Errorf("crash.previous.log = %q, want boom", got)
	}
	s := summaryOf(t, files)
	f := failingPod(s, "diag", "crash")
	if f == nil || f.Reason != "CrashLoopBackOff" || f.ExitCode == nil || *f.ExitCode != 3 || f.Restarts < 1 {
		t.Errorf("crash in summary.json: %+v", f)
	}
	md := files["summary.md"]
	if !strings.Contains(md, "| diag/crash | crash | CrashLoopBackOff | 3 |") {
		t.Errorf("summary.md does not list the crash loop:\n%s", md)
	}
	if !strings.Contains(files["pods.txt"], "exit-code=3") {
		t.Errorf("pods.txt has no exit code 3:\n%s", files["pods.txt"])
	}
}

func summaryOf(t *testing.T, files map[string]string) diagnostics.Summary {
	t.Helper()
	var s diagnostics.Summary
	if err := json.Unmarshal([]byte(files["summary.json"]), &s); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	return s
}

func failingPod(s diagnostics.Summary, ns, name string) *diagnostics.FailingPod {
	for i, f := range s.FailingPods {
		if f.Namespace == ns && f.Name == name {
			return &s.FailingPods[i]
		}
	}
	return nil
}

// checkEventsSorted checks that events.txt is ordered by time.
func checkEventsSorted(t *testing.T, events string) {
	t.Helper()
	var last time.Time
	n := 0
	for line := range strings.Lines(events) {
		ts, _, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			t.Fatalf("events.txt line %q: %v", line, err)
		}
		if at.Before(last) {
			t.Errorf("events.txt is not by time: %s after %s", at, last)
		}
		last, n = at, n+1
	}
	if n == 0 || !strings.Contains(events, "BackOff") {
		t.Errorf("events.txt has no back-off event:\n%s", events)
	}
}
