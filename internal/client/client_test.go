package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/wire"
)

const token = "smek_testtoken"

func setup(t *testing.T) (*clienttest.Server, *client.Client) {
	t.Helper()
	srv := clienttest.NewServer(token)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func ptr[T any](v T) *T { return &v }

func TestLifecycle(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()

	created, err := c.Create(ctx, wire.CreateRequest{
		MinutesToLive: ptr(30),
		KeepCluster:   ptr(true),
		Run:           &wire.RunMetadata{Repository: "octo-org/octo-repo", RunID: 42},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.ClusterStatus != "running" || created.Kubeconfig == "" || created.Timings == nil {
		t.Fatalf("create answer = %+v, want running with kubeconfig and timings", created)
	}
	id := created.ClusterID

	got, err := c.Get(ctx, id)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Kubeconfig != "" {
		t.Errorf("get carried a kubeconfig; only minting routes should")
	}
	if got.MinutesToLive != 30 {
		t.Errorf("minutes-to-live = %d, want 30", got.MinutesToLive)
	}

	list, err := c.List(ctx, client.ListOptions{RunID: 42})
	if err != nil || len(list) != 1 || list[0].ClusterID != id {
		t.Fatalf("list run-id=42 = %v, %v; want [%s]", list, err, id)
	}
	list, err = c.List(ctx, client.ListOptions{RunID: 43})
	if err != nil || len(list) != 0 {
		t.Fatalf("list run-id=43 = %v, %v; want none", list, err)
	}

	kc, err := c.Kubeconfig(ctx, id)
	if err != nil || !strings.Contains(kc.Kubeconfig, "smek-"+id) {
		t.Fatalf("kubeconfig = %+v, %v; want one for %s", kc, err, id)
	}

	before := got.ExpiresAt
	ext, err := c.Extend(ctx, id, 15)
	if err != nil {
		t.Fatalf("extend: %v", err)
	}
	if d := ext.ExpiresAt.Sub(before).Minutes(); d != 15 {
		t.Errorf("extend moved the deadline by %v minutes, want 15", d)
	}

	stopped, err := c.Stop(ctx, id, false)
	if err != nil || stopped.ClusterStatus != "stopped" {
		t.Fatalf("stop = %+v, %v; want stopped (keep-cluster)", stopped, err)
	}
	started, err := c.Start(ctx, id)
	if err != nil || started.ClusterStatus != "running" || started.Kubeconfig == "" {
		t.Fatalf("start = %+v, %v; want running with a fresh kubeconfig", started, err)
	}
	if _, err := c.Terminate(ctx, id); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	_, err = c.Terminate(ctx, id)
	if !client.IsConflict(err) {
		t.Fatalf("second terminate: %v, want a 409", err)
	}
	events, err := c.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if got, want := strings.Join(types, ","), "created,extended,stopped,started,terminated"; got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	if live := srv.Live(); len(live) != 0 {
		t.Errorf("live clusters = %v, want none", live)
	}
}

func TestBearer(t *testing.T) {
	srv, c := setup(t)
	if _, err := c.Versions(t.Context()); err != nil {
		t.Fatal(err)
	}
	calls := srv.Calls()
	if len(calls) != 1 || calls[0].Bearer != token {
		t.Fatalf("calls = %+v, want one with the bearer token", calls)
	}
}

func TestErrors(t *testing.T) {
	srv, c := setup(t)
	ctx := t.Context()
	bad, err := client.New(srv.URL, "smek_wrong")
	if err != nil {
		t.Fatal(err)
	}
	srv.MaxClusters = 1

	_, err = bad.List(ctx, client.ListOptions{})
	check(t, "bad token", err, client.IsUnauthorized, "unauthorized", "")

	_, err = c.Get(ctx, "c-nope00")
	check(t, "unknown cluster", err, client.IsNotFound, "not-found", "cluster-id")

	_, err = c.Create(ctx, wire.CreateRequest{K8sVersion: ptr("0.1")})
	check(t, "bad version", err, client.IsInvalid, "invalid", "k8s-version")
	var e *client.Error
	if errors.As(err, &e) && !strings.Contains(e.Message(), "supported: 1.36.3") {
		t.Errorf("message %q does not list the supported versions", e.Message())
	}

	_, err = c.Create(ctx, wire.CreateRequest{EnablePrivileged: ptr(true)})
	check(t, "privileged", err, client.IsForbidden, "forbidden", "enable-privileged")

	if _, err := c.Create(ctx, wire.CreateRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(ctx, wire.CreateRequest{})
	check(t, "over the limit", err, client.IsLimit, "limit", "")

	srv.MaxClusters = 0
	srv.PoolEmpty = true
	_, err = c.Create(ctx, wire.CreateRequest{Wait: ptr("1ms")})
	check(t, "pool empty", err, client.IsUnavailable, "unavailable", "")

	if _, err := c.Get(ctx, ""); err == nil || !strings.Contains(err.Error(), "cluster id is empty") {
		t.Errorf("get with empty id: %v, want a client-side error", err)
	}
}

func check(t *testing.T, name string, err error, is func(error) bool, code, field string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: err = %v, want *client.Error", name, err)
		return
	}
	if !is(err) {
		t.Errorf("%s: status %d does not match its helper", name, e.StatusCode)
	}
	if e.Problem.Code != code || e.Problem.Field != field {
		t.Errorf("%s: code, field = %q, %q; want %q, %q", name, e.Problem.Code, e.Problem.Field, code, field)
	}
}

func TestNonProblemAnswer(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("<html>\n<body>upstream\tgone\x00</body></html>"))
	}))
	defer proxy.Close()
	c, err := client.New(proxy.URL+"/prefix/", token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Versions(t.Context())
	if !client.IsUnavailable(err) {
		t.Fatalf("err = %v, want a 503", err)
	}
	if want := "GET /v1/versions: 503 unavailable: <html> <body>upstream gone</body></html>"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestPathPrefixKept(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL+"/smek/", token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), "c-a/b"); err != nil {
		t.Fatal(err)
	}
	if want := "/smek/v1/clusters/c-a%2Fb"; path != want {
		// An id stays one path segment, whatever it holds.
		t.Errorf("path = %q, want %q", path, want)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := client.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.List(t.Context(), client.ListOptions{})
	if !client.IsUnreachable(err) {
		t.Fatalf("err = %v, want unreachable", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.List(ctx, client.ListOptions{})
	if err == nil || client.IsUnreachable(err) {
		t.Fatalf("cancelled: err = %v, want a context error, not unreachable", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, u := range []string{"", "  ", "ftp://x", "smek.example.com", "https://", "https://user:pw@x", "http://[::1"} {
		if _, err := client.New(u, token); err == nil {
			t.Errorf("New(%q) = nil error", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("New(%q) error leaks the password: %v", u, err)
		}
	}
}
