package hetzner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/imagearchive/archivetest"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestLoadImagesHetzner loads image archives through the server's HTTP
// API into a cluster's simulated k3s machine: over SSH into `k3s ctr -n
// k8s.io images import -`, then the image list `k3s ctr images ls`
// leaves. A refused archive, an archive the node's disk has no room for,
// another account's cluster and a stopped one leave the node's images as
// they were.
func TestLoadImagesHetzner(t *testing.T) {
	const maxBytes = 4 << 20
	s, fake, cfg := startHetznerServer(t, k3snode.Config{ImageStoreBytes: 1 << 20}, func(c *server.Config) { c.ImageMaxBytes = maxBytes })
	token := s.Token("acme", smektest.TokenOptions{})
	other := s.Token("other", smektest.TokenOptions{})
	waitReady(t, s)
	c := createCluster(t, s.URL, token)

	// The cluster's machine: its node is named as its server.
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(c.Kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(smektest.KubeBin(t), "kubectl"), "--kubeconfig", kc, "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get nodes: %v: %s", err, out)
	}
	srv, _, err := cfg.Client.Server.GetByName(context.Background(), string(out))
	if err != nil || srv == nil {
		t.Fatalf("server %s: %v", out, err)
	}
	node := fake.MachineOf(srv.ID).(*k3snode.Node)
	images := func() map[string]string {
		t.Helper()
		m, err := node.Images()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	app := archivetest.Image(t, nil, map[string]string{"hello.txt": "hello\n"})
	tool := archivetest.Image(t, nil, map[string]string{"tool.txt": "tool\n"})
	docker := archivetest.DockerSave(t, map[string]v1Image{"app:dev": app, "app:latest": app, "registry.example/team/tool:1": tool})
	url := s.URL + "/v1/clusters/" + c.ClusterID + "/images"

	t.Run("docker save, gzip", func(t *testing.T) {
		body := archivetest.Gzip(t, docker)
		var got wire.ImageLoad
		status := post(t, url, token, "application/gzip", bytes.NewReader(body), &got)
		if status != http.StatusOK {
			t.Fatalf("got %d %+v, want 200", status, got)
		}
		want := images()
		if got.ClusterID != c.ClusterID || got.Bytes != int64(len(body)) || len(got.Images) != 3 || len(want) != 3 {
			t.Fatalf("got %+v, node has %v", got, want)
		}
		for _, im := range got.Images {
			if want[im.Name] != im.Digest {
				t.Errorf("answered %s %s, the node has %q", im.Name, im.Digest, want[im.Name])
			}
		}
		if _, ok := want["docker.io/library/app:dev"]; !ok {
			t.Errorf("the node has %v, want docker.io/library/app:dev", want)
		}
	})
	t.Run("OCI layout", func(t *testing.T) {
		var got wire.ImageLoad
		body := archivetest.OCI(t, "docker.io/library/oci:1", tool)
		if status := post(t, url, token, "application/x-tar", bytes.NewReader(body), &got); status != http.StatusOK || len(got.Images) != 1 || got.Images[0].Name != "docker.io/library/oci:1" {
			t.Fatalf("got %d %+v", status, got)
		}
		if d := images()["docker.io/library/oci:1"]; d != got.Images[0].Digest {
			t.Errorf("the node has digest %q, answered %q", d, got.Images[0].Digest)
		}
	})

	t.Run("the client's wire path, chunked", func(t *testing.T) {
		cl, err := client.New(s.URL, token)
		if err != nil {
			t.Fatal(err)
		}
		body := archivetest.DockerSave(t, map[string]v1Image{"cli:1": tool})
		got, err := cl.LoadImages(context.Background(), c.ClusterID, io.MultiReader(bytes.NewReader(body)), -1, client.MediaTar)
		if err != nil || len(got.Images) != 1 || got.Images[0].Name != "docker.io/library/cli:1" || got.Bytes != int64(len(body)) {
			t.Fatalf("got %+v, %v", got, err)
		}
		if d := images()["docker.io/library/cli:1"]; d != got.Images[0].Digest {
			t.Errorf("the node has digest %q, answered %q", d, got.Images[0].Digest)
		}
		_, err = cl.LoadImages(context.Background(), c.ClusterID, bytes.NewReader([]byte("not an archive")), -1, client.MediaTar)
		if p, ok := errors.AsType[*client.Error](err); !ok || p.StatusCode != http.StatusBadRequest || p.Problem.Field != "body" {
			t.Errorf("a bad archive: got %v, want a 400 problem", err)
		}
	})

	before := images()
	missingLayer := archivetest.Edit(t, docker, func(n string, b []byte) ([]byte, bool) { return b, !strings.HasSuffix(n, ".tar.gz") })
	random := make([]byte, 1<<20+1<<19) // incompressible: more than the node's 1 MiB
	rand.Read(random)
	big := archivetest.DockerSave(t, map[string]v1Image{"big:1": archivetest.Image(t, nil, map[string]string{"big": string(random)})})
	for _, tt := range []struct {
		name, token, contentType string
		body                     io.Reader
		status                   int
		code, field              string
	}{
		{"corrupt archive", token, "application/x-tar", bytes.NewReader(missingLayer), http.StatusBadRequest, "invalid", "body"},
		{"truncated gzip", token, "application/gzip", bytes.NewReader(archivetest.Gzip(t, docker)[:300]), http.StatusBadRequest, "invalid", "body"},
		{"wrong content type", token, "application/json", bytes.NewReader(docker), http.StatusUnsupportedMediaType, "unsupported-media-type", "Content-Type"},
		{"over the limit, chunked", token, "application/octet-stream", io.MultiReader(bytes.NewReader(docker), bytes.NewReader(make([]byte, maxBytes))), http.StatusRequestEntityTooLarge, "too-large", "body"},
		{"another account's cluster", other, "application/x-tar", bytes.NewReader(docker), http.StatusNotFound, "not-found", "cluster-id"},
		{"node disk full", token, "application/x-tar", bytes.NewReader(big), http.StatusInsufficientStorage, "insufficient-storage", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var p wire.Problem
			if status := post(t, url, tt.token, tt.contentType, tt.body, &p); status != tt.status || p.Code != tt.code || p.Field != tt.field {
				t.Errorf("got %d %+v, want %d %s naming %q", status, p, tt.status, tt.code, tt.field)
			}
			if after := images(); !maps.Equal(after, before) {
				t.Errorf("the node's images changed: %v, were %v", after, before)
			}
		})
	}
	t.Run("over the limit by Content-Length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(make([]byte, maxBytes+1)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-tar")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d, want 413", resp.StatusCode)
		}
	})
	t.Run("stopped cluster", func(t *testing.T) {
		var cl wire.Cluster
		if status := post(t, s.URL+"/v1/clusters/"+c.ClusterID+"/stop", token, "application/json", strings.NewReader("{}"), &cl); status != http.StatusOK {
			t.Fatalf("stop: %d", status)
		}
		var p wire.Problem
		if status := post(t, url, token, "application/x-tar", bytes.NewReader(docker), &p); status != http.StatusConflict || p.Code != "conflict" {
			t.Errorf("got %d %+v, want 409 conflict", status, p)
		}
	})
}

// createCluster creates a cluster over POST /v1/clusters.
func createCluster(t *testing.T, base, token string) wire.Cluster {
	t.Helper()
	var c wire.Cluster
	if status := post(t, base+"/v1/clusters", token, "application/json", strings.NewReader("{}"), &c); status != http.StatusCreated {
		t.Fatalf("POST /v1/clusters: %d", status)
	}
	return c
}

// post sends body and decodes the JSON answer into out.
func post(t *testing.T, url, token, contentType string, body io.Reader, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Errorf("%s: decode the answer: %v", url, err)
	}
	return resp.StatusCode
}
