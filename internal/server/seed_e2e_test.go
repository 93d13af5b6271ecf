package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// The seed's curl body, verbatim but for a real address: no braces,
// comments, and the docs' trailing layout.
const seedCreateBody = `
                "k8s-version": "1.36.3", //default: "1.27.4"
                "minutes-to-live": 120, //default: 60
                "keep-cluster": true, //default: true
                "notification-email": "dev@example.com", //required
                "enable-privileged": false, //default: false
                "cluster-size": "1-mid" //default: "1-mid"
        `

// TestSeedWalkthrough does what a new user does with the README: create
// with curl | sh -, use kubectl, list, stop, start, terminate.
func TestSeedWalkthrough(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("newcomer", smektest.TokenOptions{})
	smek.WaitReady(1, false)

	// curl -Ss .../create -d '...' | sh -
	status, script := call(t, "POST", smek.URL+"/create", token, seedCreateBody, "*/*")
	if status != 200 {
		t.Fatalf("create: status %d: %s", status, script)
	}
	home := t.TempDir()
	sh := exec.Command("/bin/sh", "-")
	sh.Stdin = strings.NewReader(string(script))
	sh.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(home, ".kube", "smek-c-*.yaml"))
	if len(matches) != 1 {
		t.Fatalf("kubeconfigs written: %v; script said %s", matches, out)
	}
	kubeconfig := matches[0]
	id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(kubeconfig), "smek-"), ".yaml")
	if !strings.Contains(string(out), id) || !strings.Contains(string(out), "export KUBECONFIG=") {
		t.Errorf("script output %q lacks the id or the export line", out)
	}
	if fi, _ := os.Stat(kubeconfig); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(home, ".kube", "config")); !os.IsNotExist(err) {
		t.Errorf("~/.kube/config was touched: %v", err)
	}

	// kubectl works, and the cluster id is everywhere the seed promises.
	if out, err := kubectl(t, kubeconfig, "get", "ns"); err != nil || !strings.Contains(out, "default") {
		t.Fatalf("kubectl get ns: %v: %s", err, out)
	}
	if out, err := kubectl(t, kubeconfig, "get", "nodes", "-L", "smek-cluster-id"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("kubectl get nodes -L smek-cluster-id: %v: %s", err, out)
	}
	if out, err := kubectl(t, kubeconfig, "config", "current-context"); err != nil || strings.TrimSpace(out) != id {
		t.Errorf("current context %q, want %s (%v)", out, id, err)
	}

	list := mustJSON[[]wire.ListItem](t, 200, "GET", smek.URL+"/list", token, "")
	if len(list) != 1 || list[0].ClusterID != id || list[0].ClusterStatus != "running" {
		t.Fatalf("/list = %+v, want %s running", list, id)
	}

	// keep-cluster is true: /stop stops.
	stopped := mustJSON[wire.ListItem](t, 200, "POST", smek.URL+"/stop", token, fmt.Sprintf(`"cluster-id": %q //required`, id))
	if stopped.ClusterStatus != "stopped" {
		t.Fatalf("/stop answered %+v, want stopped", stopped)
	}
	if list := mustJSON[[]wire.ListItem](t, 200, "GET", smek.URL+"/list", token, ""); len(list) != 1 || list[0].ClusterStatus != "stopped" {
		t.Fatalf("/list after stop = %+v", list)
	}
	if _, err := kubectl(t, kubeconfig, "get", "ns"); err == nil {
		t.Errorf("kubectl still works on a stopped cluster")
	}

	// /start returns a fresh kubeconfig that works, with the data kept.
	status, yaml := call(t, "POST", smek.URL+"/start", token, fmt.Sprintf(`{"cluster-id": %q}`, id), "application/yaml")
	if status != 200 {
		t.Fatalf("/start: status %d: %s", status, yaml)
	}
	fresh := writeKubeconfig(t, string(yaml))
	if out, err := kubectl(t, fresh, "get", "nodes", "-L", "smek-cluster-id"); err != nil || !strings.Contains(out, id) {
		t.Fatalf("kubectl after start: %v: %s", err, out)
	}

	// force-terminate ends it for good.
	gone := mustJSON[wire.ListItem](t, 200, "POST", smek.URL+"/stop", token, fmt.Sprintf(`{"cluster-id": %q, "force-terminate": true}`, id))
	if gone.ClusterStatus != "terminated" {
		t.Fatalf("force-terminate answered %+v", gone)
	}
	if list := mustJSON[[]wire.ListItem](t, 200, "GET", smek.URL+"/list", token, ""); len(list) != 0 {
		t.Errorf("/list after terminate = %+v, want empty", list)
	}
	status, b := call(t, "POST", smek.URL+"/stop", token, fmt.Sprintf(`{"cluster-id": %q}`, id), "application/json")
	problemOf(t, status, b, 409, "conflict")
}

// TestKeepClusterFalseTerminatesOnStop: the seed's /stop terminates a
// cluster created with keep-cluster false.
func TestKeepClusterFalseTerminatesOnStop(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("ci", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/create", token, `{"notification-email": "ci@example.com", "keep-cluster": false}`)
	if c.KeepCluster || c.MinutesToLive != 60 || c.ClusterSize != "1-mid" || c.EnablePrivileged {
		t.Errorf("defaults not applied: %+v", c)
	}
	// The phases of making its server ready come with the answer.
	if c.Timings == nil || c.Timings.Server["control-plane"] <= 0 || c.Timings.Server["policy"] <= 0 {
		t.Errorf("timings %+v lack the server's phases", c.Timings)
	}
	got := mustJSON[wire.ListItem](t, 200, "POST", smek.URL+"/stop", token, fmt.Sprintf(`{"cluster-id": %q}`, c.ClusterID))
	if got.ClusterStatus != "terminated" {
		t.Fatalf("/stop of a keep-cluster:false cluster answered %s, want terminated", got.ClusterStatus)
	}
}
