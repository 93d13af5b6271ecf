package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/smek/action/internal/imagearchive"
	"github.com/smek/action/internal/imagearchive/archivetest"
	"github.com/smek/action/internal/wire"
)

// TestIntegrationLocalNodeLoadsImages loads an image that no registry has
// through POST /v1/clusters/{id}/images into a real node's containerd
// (ctr images import), and a pod with imagePullPolicy IfNotPresent runs
// it at once. An archive the node's containerd refuses (a layer that is
// not a tar) is undone: its name is not left on the node.
func TestIntegrationLocalNodeLoadsImages(t *testing.T) {
	smek, token, c, kubectl := startNodeCluster(t)
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	img := archivetest.Image(t, nil, map[string]string{"bin/busybox": string(busybox), "hello.txt": "loaded without a registry"})
	archive := archivetest.DockerSave(t, map[string]v1.Image{"smek.invalid/app:dev": img})
	want, err := imagearchive.Read(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	url := smek.URL + "/v1/clusters/" + c.ClusterID + "/images"

	load := func(t *testing.T, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-tar")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}

	t.Run("a pod runs the loaded image", func(t *testing.T) {
		status, body := load(t, archive)
		var got wire.ImageLoad
		if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
			t.Fatalf("got %d %s", status, body)
		}
		// The digest containerd shows is the one imagearchive predicts
		// for the manifest containerd writes.
		if len(got.Images) != 1 || got.Images[0].Name != "smek.invalid/app:dev" || got.Images[0].Digest != want[0].Digest || got.Bytes != int64(len(archive)) {
			t.Fatalf("got %+v, want smek.invalid/app:dev %s", got, want[0].Digest)
		}
		if out, err := kubectl("run", "loaded", "--image=smek.invalid/app:dev", "--image-pull-policy=IfNotPresent", "--restart=Never", "--command", "--", "/bin/busybox", "cat", "/hello.txt"); err != nil {
			t.Fatalf("kubectl run: %v: %s", err, out)
		}
		if out, err := kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/loaded", "--timeout=120s"); err != nil {
			desc, _ := kubectl("describe", "pod/loaded")
			t.Fatalf("kubectl wait: %v: %s\n%s", err, out, desc)
		}
		if out, _ := kubectl("logs", "loaded"); out != "loaded without a registry" {
			t.Errorf("kubectl logs: %q", out)
		}
	})
	t.Run("containerd refuses a layer that is not a tar, nothing stays", func(t *testing.T) {
		bad := archivetest.DockerSave(t, map[string]v1.Image{"smek.invalid/bad:1": archivetest.Image(t, nil, map[string]string{"x": "y"})})
		bad = archivetest.Edit(t, bad, func(n string, b []byte) ([]byte, bool) {
			if strings.HasSuffix(n, ".tar.gz") {
				return archivetest.Gzip(t, []byte("this is not a tar archive")), true
			}
			return b, true
		})
		status, body := load(t, bad)
		var p wire.Problem
		if err := json.Unmarshal(body, &p); err != nil || status != http.StatusBadRequest || p.Field != "body" {
			t.Fatalf("got %d %s, want 400 naming body", status, body)
		}
		// The name the failed import made is gone: loading the good
		// archive again answers it alone.
		status, body = load(t, archive)
		var got wire.ImageLoad
		if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK || len(got.Images) != 1 {
			t.Fatalf("reload: %d %s", status, body)
		}
		if out, err := kubectl("run", "bad", "--image=smek.invalid/bad:1", "--image-pull-policy=Never", "--restart=Never"); err != nil {
			t.Fatalf("kubectl run: %v: %s", err, out)
		}
		if out, err := kubectl("wait", "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=ErrImageNeverPull", "pod/bad", "--timeout=120s"); err != nil {
			t.Errorf("the refused image is on the node: %v: %s", err, out)
		}
	})
}
