package local

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/registrymirror"
)

// onlyInMirror is an image no registry but the test's mirror has.
const onlyInMirror = "docker.io/smektest/only-in-mirror:1"

// TestNodePullsFromOperatorMirror: a node pulls an image of docker.io
// that only the operator's mirror holds, so its containerd tries that
// mirror (after SMEK's own, which does not have it) before Docker Hub.
func TestNodePullsFromOperatorMirror(t *testing.T) {
	b := nodeBackend(t)
	const id = "mirror-1"
	m := cluster.Member{ID: id}
	// The node's network is claimed first, so that the mirror's URL can
	// name the node's host address, the one address of this machine a
	// node reaches.
	dir := b.dir(m)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := nodeNetFor(dir)
	if err != nil {
		t.Fatal(err)
	}
	url, pulls := testMirror(t, b.cfg.Busybox, n)
	b.cfg.RegistryMirrors = []registrymirror.Mirror{{Registry: "docker.io", URL: url}}
	c := provisionNode(t, b, id)
	mem, err := b.member(c.m)
	if err != nil {
		t.Fatal(err)
	}
	if mem.node.net.Index != n.Index {
		t.Fatalf("the node took network %d, not the claimed %d", mem.node.net.Index, n.Index)
	}
	// The node's firewall lets it reach the API and SMEK's mirror only;
	// the test's mirror is let in by the test alone.
	rule := []string{"insert", "rule", "inet", n.name(), "input", "iifname", n.name(), "ip", "daddr", n.hostIP().String(),
		"tcp", "dport", strconv.Itoa(portOf(t, url)), "accept"}
	if out, err := exec.Command("nft", rule...).CombinedOutput(); err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(rule, " "), err, out)
	}
	c.apply(`apiVersion: v1
kind: Pod
metadata: {name: mirrored}
spec:
  containers:
  - name: c
    image: ` + onlyInMirror + `
    command: ["sh", "-c", "echo pulled from the mirror && exec sleep 3600"]
`)
	c.must("wait", "--for=condition=Ready", "pod/mirrored", "--timeout=150s")
	if got := c.must("logs", "mirrored"); got != "pulled from the mirror" {
		t.Errorf("the pod's log: got %q", got)
	}
	if pulls.Load() == 0 {
		t.Error("the test's mirror served no manifest")
	}
}

// testMirror serves onlyInMirror, built from the busybox layer, on every
// address of this machine, and returns its URL on the node's host
// address and a count of the manifests it served.
func testMirror(t *testing.T, busybox string, n nodeNet) (string, *atomic.Int64) {
	t.Helper()
	layer, err := busyboxLayer(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var pulls atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet {
			pulls.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Config = v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"sh"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	tag, err := name.NewTag(fmt.Sprintf("127.0.0.1:%d/%s", port, strings.TrimPrefix(onlyInMirror, "docker.io/")), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	pulls.Store(0)
	return fmt.Sprintf("http://%s:%d", n.hostIP(), port), &pulls
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	p, err := strconv.Atoi(url[strings.LastIndex(url, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}
