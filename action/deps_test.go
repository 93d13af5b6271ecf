package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDeps keeps the action binary lean: it runs in every CI job that uses
// SMEK, so it must not link the server's database, the cloud SDK or the
// Kubernetes client.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	bad := map[string]string{
		"modernc.org/sqlite":                   "the server's database",
		"github.com/hetznercloud/hcloud-go/v2": "the Hetzner backend",
		"k8s.io/client-go":                     "Kubernetes client: the action only writes a kubeconfig",
		"k8s.io/apimachinery":                  "Kubernetes client: the action only writes a kubeconfig",
		"github.com/google/go-github/v88":      "the GitHub App",
		"github.com/coreos/go-oidc/v3":         "server-side token verification",
		"github.com/prometheus/client_golang":  "server metrics",
		"github.com/smek/action/internal/api":  "the server",
		"testing":                              "test code in the binary",
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var nonStd []string
	for {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for prefix, why := range bad {
			if p.ImportPath == prefix || strings.HasPrefix(p.ImportPath, prefix+"/") {
				t.Errorf("the action links %s (%s)", p.ImportPath, why)
			}
		}
		if !p.Standard {
			nonStd = append(nonStd, p.ImportPath)
		}
	}
	// The whole non-standard closure, so that a new dependency is a
	// decision made in review.
	want := []string{
		"github.com/sethvargo/go-githubactions",
		"github.com/smek/action/internal/wire",
		"github.com/smek/action/internal/problem",
		"github.com/smek/action/internal/cluster",
		"github.com/smek/action/internal/client",
		"github.com/smek/action/internal/ghaction",
		"github.com/smek/action/action",
	}
	slices.Sort(nonStd)
	slices.Sort(want)
	if !slices.Equal(nonStd, want) {
		t.Errorf("non-standard packages = %q, want exactly %q", nonStd, want)
	}
}
