package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestTenantsAreIsolated: another account's cluster is a 404 on every route
// that names it, and never shows in a listing.
func TestTenantsAreIsolated(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	alice := smek.Token("alice", smektest.TokenOptions{})
	mallory := smek.Token("mallory", smektest.TokenOptions{AllowPrivileged: true, MaxClusters: 50})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", alice, `{"keep-cluster": true}`)
	id := c.ClusterID

	attacks := []struct{ method, path, body string }{
		{"GET", "/v1/clusters/" + id, ""},
		{"GET", "/v1/clusters/" + id + "/kubeconfig", ""},
		{"GET", "/v1/clusters/" + id + "/events", ""},
		{"POST", "/v1/clusters/" + id + "/stop", `{"force-terminate": true}`},
		{"POST", "/v1/clusters/" + id + "/start", ""},
		{"POST", "/v1/clusters/" + id + "/terminate", ""},
		{"DELETE", "/v1/clusters/" + id, ""},
		{"POST", "/v1/clusters/" + id + "/extend", `{"minutes": 5}`},
		{"POST", "/stop", fmt.Sprintf(`{"cluster-id": %q, "force-terminate": true}`, id)},
		{"POST", "/start", fmt.Sprintf(`{"cluster-id": %q}`, id)},
	}
	for _, a := range attacks {
		t.Run(a.method+" "+a.path, func(t *testing.T) {
			status, b := call(t, a.method, smek.URL+a.path, mallory, a.body, "application/json")
			p := problemOf(t, status, b, 404, "not-found")
			if strings.Contains(p.Detail, "alice") {
				t.Errorf("the answer leaks the owner: %s", p.Detail)
			}
		})
	}
	if list := mustJSON[[]wire.ListItem](t, 200, "GET", smek.URL+"/list", mallory, ""); len(list) != 0 {
		t.Errorf("mallory's /list shows %+v", list)
	}
	if list := mustJSON[wire.ClusterList](t, 200, "GET", smek.URL+"/v1/clusters?status=all", mallory, ""); len(list.Clusters) != 0 {
		t.Errorf("mallory's /v1/clusters shows %+v", list)
	}
	// Mallory's attempts changed nothing.
	got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+id, alice, "")
	if got.ClusterStatus != "running" || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Errorf("alice's cluster after the attacks: %s, expires %s (was %s)", got.ClusterStatus, got.ExpiresAt, c.ExpiresAt)
	}
	// A service token sees it (the GitHub App cleans up across accounts).
	app := smek.Token("smek-app", smektest.TokenOptions{Service: true})
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+id, app, ""); got.ClusterID != id {
		t.Errorf("service token got %+v", got)
	}
	// An ordinary token may not act on behalf of an installation.
	req, _ := http.NewRequest("GET", smek.URL+"/v1/clusters", nil)
	req.Header.Set("Authorization", "Bearer "+mallory)
	req.Header.Set("SMEK-On-Behalf-Of-Installation", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("on-behalf header with a plain token: status %d, want 403", resp.StatusCode)
	}
}

// TestAuthAndLimits covers the credential and limit answers of the API.
func TestAuthAndLimits(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	one := smek.Token("one-cluster", smektest.TokenOptions{MaxClusters: 1})
	smek.WaitReady(1, false)
	revoked := smek.Token("revoked", smektest.TokenOptions{})
	toks, err := smek.DB.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := smek.DB.RevokeToken(context.Background(), toks[0].Prefix); err != nil { // newest first
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"not bearer", "Basic dXNlcjpwYXNz"},
		{"unknown", "Bearer smek_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"garbage", "Bearer not-a-token"},
		{"revoked", "Bearer " + revoked},
		{"jwt without oidc", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
	} {
		t.Run("401 "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", smek.URL+"/list", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != wire.MediaProblem || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("status %d, content type %q, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	status, b := call(t, "POST", smek.URL+"/v1/clusters", one, `{"enable-privileged": true}`, "application/json")
	if p := problemOf(t, status, b, 403, "forbidden"); p.Field != "enable-privileged" {
		t.Errorf("403 names field %q", p.Field)
	}
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", one, `{}`)
	status, b = call(t, "POST", smek.URL+"/v1/clusters", one, `{}`, "application/json")
	problemOf(t, status, b, 429, "limit")
	// Stopping frees the slot; starting again is over the limit while
	// another runs.
	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", one, "")
	if n, _ := smek.DB.CountLive(context.Background(), mustAccount(t, smek, "one-cluster")); n != 0 {
		t.Errorf("live clusters after stop: %d", n)
	}
	status, b = call(t, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/terminate", one, "", "application/json")
	if status != 200 {
		t.Fatalf("terminate: %d %s", status, b)
	}
	status, b = call(t, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/terminate", one, "", "application/json")
	problemOf(t, status, b, 409, "conflict")
	status, b = call(t, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/start", one, "", "application/json")
	problemOf(t, status, b, 409, "conflict")
}

func mustAccount(t testing.TB, smek *smektest.SMEK, name string) int64 {
	t.Helper()
	a, err := smek.DB.AccountByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// TestBadInput: every field is validated with a message naming it; nothing
// is a 500, and a rejected create leaves nothing behind.
func TestBadInput(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{})
	token := smek.Token("careful", smektest.TokenOptions{MaxMinutesToLive: 120})
	cases := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"minutes string", "/create", `{"notification-email": "a@example.com", "minutes-to-live": "abc"}`, 400, "invalid", "minutes-to-live"},
		{"minutes zero", "/create", `{"notification-email": "a@example.com", "minutes-to-live": 0}`, 400, "invalid", "minutes-to-live"},
		{"minutes over account max", "/create", `{"notification-email": "a@example.com", "minutes-to-live": 121}`, 400, "invalid", "minutes-to-live"},
		{"minutes float", "/create", `{"notification-email": "a@example.com", "minutes-to-live": 1.5}`, 400, "invalid", "minutes-to-live"},
		{"unknown version", "/create", `{"notification-email": "a@example.com", "k8s-version": "1.27.4"}`, 400, "invalid", "k8s-version"},
		{"unknown size", "/create", `{"notification-email": "a@example.com", "cluster-size": "3-huge"}`, 400, "invalid", "cluster-size"},
		{"email missing", "/create", `{"minutes-to-live": 5}`, 400, "invalid", "notification-email"},
		{"email malformed", "/create", `{"notification-email": "not an email"}`, 400, "invalid", "notification-email"},
		{"email with name", "/create", `{"notification-email": "Bob <bob@example.com>"}`, 400, "invalid", "notification-email"},
		{"keep-cluster string", "/create", `{"notification-email": "a@example.com", "keep-cluster": "yes"}`, 400, "invalid", "keep-cluster"},
		{"privileged number", "/create", `{"notification-email": "a@example.com", "enable-privileged": 1}`, 400, "invalid", "enable-privileged"},
		{"unknown field", "/create", `{"notification-email": "a@example.com", "nodes": 3}`, 400, "invalid", "nodes"},
		{"not json", "/create", `this is not json`, 400, "invalid", ""},
		{"array", "/create", `[1, 2]`, 400, "invalid", ""},
		{"empty", "/create", ``, 400, "invalid", ""},
		{"trailing garbage", "/create", `{"notification-email": "a@example.com"} {}`, 400, "invalid", ""},
		{"wait on seed create", "/create", `{"notification-email": "a@example.com", "wait": "1m"}`, 400, "invalid", "wait"},
		{"v1 wait malformed", "/v1/clusters", `{"wait": "soon"}`, 400, "invalid", "wait"},
		{"v1 wait too long", "/v1/clusters", `{"wait": "48h"}`, 400, "invalid", "wait"},
		{"v1 run id string", "/v1/clusters", `{"run": {"run-id": "x"}}`, 400, "invalid", "run.run-id"},
		{"stop without id", "/stop", `{}`, 400, "invalid", "cluster-id"},
		{"stop bad id", "/stop", `{"cluster-id": "../../etc"}`, 400, "invalid", "cluster-id"},
		{"stop unknown id", "/stop", `{"cluster-id": "c-zzzzzz"}`, 404, "not-found", "cluster-id"},
		{"stop force string", "/stop", `{"cluster-id": "c-zzzzzz", "force-terminate": "true"}`, 400, "invalid", "force-terminate"},
		{"start without id", "/start", `{}`, 400, "invalid", "cluster-id"},
		{"extend no minutes", "/v1/clusters/c-zzzzzz/extend", `{}`, 400, "invalid", "minutes"},
		{"too large", "/create", `{"notification-email": "` + strings.Repeat("a", 70<<10) + `@example.com"}`, 413, "too-large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, b := call(t, "POST", smek.URL+tc.path, token, tc.body, "application/json")
			p := problemOf(t, status, b, tc.status, tc.code)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", p.Field, tc.field, p.Detail)
			}
			if tc.status == 400 && tc.field != "" && !strings.Contains(p.Detail, strings.TrimPrefix(tc.field, "run.")) {
				t.Errorf("detail %q does not name %s", p.Detail, tc.field)
			}
		})
	}
	t.Run("unknown version lists the supported ones", func(t *testing.T) {
		status, b := call(t, "POST", smek.URL+"/create", token, `{"notification-email": "a@example.com", "k8s-version": "1.27.4"}`, "application/json")
		p := problemOf(t, status, b, 400, "invalid")
		if len(p.Supported) == 0 || !strings.Contains(p.Detail, p.Supported[0]) {
			t.Errorf("problem %+v does not list the supported versions", p)
		}
	})
	t.Run("script clients get a failing script", func(t *testing.T) {
		status, b := call(t, "POST", smek.URL+"/create", token, `{"minutes-to-live": 5}`, "*/*")
		if status != 400 || !strings.Contains(string(b), "exit 1") || !strings.Contains(string(b), "notification-email") {
			t.Errorf("status %d, body %s", status, b)
		}
	})
	if cs, err := smek.DB.Clusters(context.Background(), cluster.Filter{}); err != nil || len(cs) != 0 {
		t.Errorf("rejected creates left clusters behind: %v %v", cs, err)
	}
	status, b := call(t, "GET", smek.URL+"/no/such/route", token, "", "")
	problemOf(t, status, b, 404, "not-found")
}
