package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/wire"
)

// stale is what a kubeconfig file holds before the extend: another token.
const stale = "apiVersion: v1\nkind: Config\nusers:\n- name: old\n  user:\n    token: expired-token\n"

func writeStale(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantFresh checks that path holds the cluster's fresh kubeconfig, private.
func wantFresh(t *testing.T, path, id string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != clienttest.Kubeconfig(id, "https://127.0.0.1:6443") {
		t.Errorf("%s holds %q, want the fresh kubeconfig of %s", path, b, id)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, %v; want 0600", path, fi.Mode().Perm(), err)
	}
}

// TestCLIExtendRefreshesTheKubeconfig is issue 13's item 12 for the CLI:
// `smek extend` leaves the kubeconfig file its user holds with a fresh
// credential, and says where it wrote it.
func TestCLIExtendRefreshesTheKubeconfig(t *testing.T) {
	create := func(c *cliEnv) (id, path string) {
		t.Helper()
		out := c.ok("create", "--minutes-to-live", "15")
		id = strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
		return id, filepath.Join(c.vars["HOME"], ".kube", "smek-"+id+".yaml")
	}

	t.Run("the file KUBECONFIG names", func(t *testing.T) {
		c := newCLI(t)
		id, def := create(c)
		os.Remove(def)
		path := filepath.Join(t.TempDir(), "ci", "smek-"+id+".yaml")
		writeStale(t, path)
		c.vars["KUBECONFIG"] = "/nonexistent/config" + string(os.PathListSeparator) + path
		out := c.ok("extend", id, "--minutes", "30")
		if !strings.Contains(out, "Extended "+id) || !strings.Contains(out, "Refreshed the kubeconfig "+path) {
			t.Errorf("extend printed %q, want the extension and the refreshed file", out)
		}
		wantFresh(t, path, id)
		if _, err := os.Stat(def); !os.IsNotExist(err) {
			t.Errorf("extend wrote %s, which did not exist: %v", def, err)
		}
	})

	t.Run("the file under HOME", func(t *testing.T) {
		c := newCLI(t)
		id, path := create(c)
		writeStale(t, path)
		if out := c.ok("extend", id, "--minutes", "30"); !strings.Contains(out, "Refreshed the kubeconfig "+path) {
			t.Errorf("extend printed %q", out)
		}
		wantFresh(t, path, id)
	})

	t.Run("--kubeconfig PATH", func(t *testing.T) {
		c := newCLI(t)
		id, _ := create(c)
		path := filepath.Join(t.TempDir(), "new", "kc.yaml")
		if out := c.ok("extend", id, "--minutes", "30", "--kubeconfig", path); !strings.Contains(out, "Refreshed the kubeconfig "+path) {
			t.Errorf("extend printed %q", out)
		}
		wantFresh(t, path, id)
	})

	t.Run("--output json keeps stdout JSON", func(t *testing.T) {
		c := newCLI(t)
		id, path := create(c)
		writeStale(t, path)
		out, errOut, err := c.run("extend", id, "--minutes", "30", "--output", "json")
		var cl wire.Cluster
		if err != nil || json.Unmarshal([]byte(out), &cl) != nil || cl.ClusterID != id {
			t.Fatalf("extend --output json: %v, stdout %q", err, out)
		}
		if !strings.Contains(errOut, "Refreshed the kubeconfig "+path) {
			t.Errorf("stderr %q does not name the refreshed file", errOut)
		}
		wantFresh(t, path, id)
	})

	t.Run("another cluster's or the user's own file stays", func(t *testing.T) {
		c := newCLI(t)
		id, path := create(c)
		os.Remove(path)
		mine := filepath.Join(c.vars["HOME"], ".kube", "config")
		other := filepath.Join(c.vars["HOME"], ".kube", "smek-c-other1.yaml")
		writeStale(t, mine)
		writeStale(t, other)
		c.vars["KUBECONFIG"] = mine + string(os.PathListSeparator) + other
		out, errOut, err := c.run("extend", id, "--minutes", "30")
		if err != nil || !strings.Contains(out, "Extended "+id) {
			t.Fatalf("extend: %v, %q", err, out)
		}
		for _, p := range []string{mine, other} {
			if b, _ := os.ReadFile(p); string(b) != stale {
				t.Errorf("extend changed %s", p)
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("extend created %s: %v", path, err)
		}
		if !strings.Contains(errOut, "smek kubeconfig "+id) {
			t.Errorf("stderr %q does not say how to fetch a kubeconfig", errOut)
		}
	})

	t.Run("a stopped cluster has no kubeconfig to refresh", func(t *testing.T) {
		c := newCLI(t)
		out := c.ok("create", "--minutes-to-live", "15", "--keep-cluster", "true")
		id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
		path := filepath.Join(c.vars["HOME"], ".kube", "smek-"+id+".yaml")
		c.ok("stop", id)
		writeStale(t, path)
		out, errOut, err := c.run("extend", id, "--minutes", "30")
		if err != nil || !strings.Contains(out, "Extended "+id+": stopped") {
			t.Fatalf("extend of a stopped cluster: %v, %q, %q", err, out, errOut)
		}
		if b, _ := os.ReadFile(path); string(b) != stale {
			t.Errorf("extend of a stopped cluster rewrote %s", path)
		}
		if !strings.Contains(errOut, "smek start") {
			t.Errorf("stderr %q does not point to smek start", errOut)
		}
	})
}

// TestExtendInALaterStep: in a GitHub Actions job, a `run:` step on the
// runner calls `smek extend` with the job's environment; the kubeconfig
// the action wrote (KUBECONFIG, a host path under RUNNER_TEMP) is
// refreshed in place.
func TestExtendInALaterStep(t *testing.T) {
	e := newEnv(t)
	main := e.mainStep(e.inputs(map[string]string{"minutes-to-live": "15"}))
	if main.err != nil {
		t.Fatalf("main step: %v\n%s", main.err, main.stdout)
	}
	id := main.res.Outputs["cluster-id"]
	path := hostKubeconfig(e.runner, id)
	writeStale(t, path)

	host := e.runner.HostStep()
	host.Set("SMEK_API_URL", e.api.URL)
	host.Set("SMEK_TOKEN", testToken)
	var out, errOut syncBuffer
	if err := e.program(&out, &errOut, host.Getenv).run(t.Context(), []string{"extend", id, "--minutes", "60"}); err != nil {
		t.Fatalf("smek extend: %v\n%s", err, errOut.String())
	}
	host.Done()
	if !strings.Contains(out.String(), "Refreshed the kubeconfig "+path) {
		t.Errorf("smek extend printed %q, want the refreshed host path %s", out.String(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := e.api.Cluster(id)
	if string(b) != clienttest.Kubeconfig(id, cl.APIServer) {
		t.Errorf("kubeconfig after extend = %q", b)
	}
}
