package server_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationDiagnosticsRoute: GET /v1/clusters/{id}/diagnostics
// answers the owner's running cluster with a bundle read through its
// tenant credential, and the usual problems otherwise: another account's
// or an unknown cluster is a 404, a stopped one a 409, a bad tail-lines a
// 400 naming it.
func TestIntegrationDiagnosticsRoute(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("tenant", smektest.TokenOptions{})
	other := smek.Token("other", smektest.TokenOptions{})
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "3m"}`)
	url := smek.URL + "/v1/clusters/" + c.ClusterID + "/diagnostics"

	status, body := call(t, "GET", url+"?tail-lines=10", token, "", "")
	if status != http.StatusOK {
		t.Fatalf("diagnostics: %d %s", status, body)
	}
	files := untar(t, body)
	for _, name := range []string{"nodes.txt", "pods.txt", "events.txt", "summary.json", "summary.md"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the bundle has no %s: %v", name, keys(files))
		}
	}
	if !strings.Contains(files["nodes.txt"], "node ") {
		t.Errorf("nodes.txt lists no node: %q", files["nodes.txt"])
	}
	if _, ok := files["errors.txt"]; ok {
		t.Errorf("errors on a healthy cluster: %s", files["errors.txt"])
	}
	tenantToken := bearerOf(t, c.Kubeconfig)
	for name, data := range files {
		if strings.Contains(data, tenantToken) || strings.Contains(data, token) {
			t.Errorf("%s holds a credential", name)
		}
	}

	for _, tc := range []struct {
		name, url, token string
		status           int
		code, field      string
	}{
		{"another account's", url, other, 404, "not-found", ""},
		{"unknown", smek.URL + "/v1/clusters/c-zzzzzz/diagnostics", token, 404, "not-found", ""},
		{"tail-lines zero", url + "?tail-lines=0", token, 400, "invalid", "tail-lines"},
		{"tail-lines word", url + "?tail-lines=all", token, 400, "invalid", "tail-lines"},
		{"tail-lines huge", url + "?tail-lines=10001", token, 400, "invalid", "tail-lines"},
		{"no token", url, "", 401, "unauthorized", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := call(t, "GET", tc.url, tc.token, "", "")
			p := problemOf(t, status, b, tc.status, tc.code)
			if tc.field != "" && p.Field != tc.field {
				t.Errorf("field %q, want %q", p.Field, tc.field)
			}
		})
	}

	mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, `{}`)
	status, b := call(t, "GET", url, token, "", "")
	problemOf(t, status, b, 409, "conflict")
}

// untar reads a tar.gz of regular files.
func untar(t testing.TB, b []byte) map[string]string {
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

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// bearerOf returns the token of a kubeconfig.
func bearerOf(t testing.TB, kubeconfig string) string {
	t.Helper()
	for line := range strings.Lines(kubeconfig) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "token: "); ok {
			return v
		}
	}
	t.Fatal("no token in the kubeconfig")
	return ""
}
