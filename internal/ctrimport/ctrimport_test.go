package ctrimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// The table `ctr images ls` prints (containerd 1.6, Debian bookworm).
const lsOutput = `REF                                TYPE                                                 DIGEST                                                                  SIZE      PLATFORMS   LABELS 
docker.io/library/app:dev          application/vnd.docker.distribution.manifest.v2+json sha256:1dbef3af759f844b87201f35a4bfd007d08ec504168d9050295114dfcd979b53 1.1 MiB   linux/amd64 -      
registry.k8s.io/pause:3.10         application/vnd.oci.image.index.v1+json              sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a 320.0 KiB linux/amd64 io.cri-containerd.image=managed 
`

func TestParseList(t *testing.T) {
	got, err := ParseList(strings.NewReader(lsOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["docker.io/library/app:dev"] != "sha256:1dbef3af759f844b87201f35a4bfd007d08ec504168d9050295114dfcd979b53" {
		t.Errorf("got %v", got)
	}
	for _, bad := range []string{"NAME DIGEST\n", "REF TYPE DIGEST\napp:dev manifest notadigest\n"} {
		if got, err := ParseList(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseList(%q) = %v, want an error", bad, got)
		}
	}
}

// node is a node's image store as ctr shows it, failing imports with
// importErr.
type node struct {
	images    map[string]string
	importErr string
	removed   []string
}

func (n *node) run(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	switch strings.Join(args[:4], " ") {
	case "-n k8s.io images ls":
		fmt.Fprintln(stdout, "REF TYPE DIGEST SIZE PLATFORMS LABELS")
		for name, d := range n.images {
			fmt.Fprintf(stdout, "%s application/vnd.docker.distribution.manifest.v2+json %s 1KiB linux/amd64 -\n", name, d)
		}
	case "-n k8s.io images import":
		io.Copy(io.Discard, stdin)
		// containerd names the images before it unpacks them.
		n.images["docker.io/library/app:dev"] = "sha256:new"
		n.images["docker.io/library/app:latest"] = "sha256:new"
		if n.importErr != "" {
			return errors.New("ctr images import: exit status 1: ctr: " + n.importErr)
		}
	case "-n k8s.io images rm":
		for _, name := range args[4:] {
			delete(n.images, name)
			n.removed = append(n.removed, name)
		}
	}
	return nil
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.tar")
	os.WriteFile(path, []byte("archive"), 0o600)
	a := cluster.ImageArchive{Path: path, Names: []string{"docker.io/library/app:dev", "docker.io/library/app:latest"}}
	n := &node{images: map[string]string{}}
	got, err := Load(context.Background(), n.run, nil, a)
	if err != nil || len(got) != 2 || got[0] != (cluster.Image{Name: "docker.io/library/app:dev", Digest: "sha256:new"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, tt := range []struct {
		said string
		code cluster.Code
	}{
		{"failed to ingest \"x\": write /var/lib/containerd/ingest/data: no space left on device", cluster.ENOSPACE},
		{"failed to extract layer sha256:aa: unexpected EOF", cluster.EINVALID},
	} {
		// app:latest was there before the import: it stays.
		n := &node{images: map[string]string{"docker.io/library/app:latest": "sha256:old"}, importErr: tt.said}
		_, err := Load(context.Background(), n.run, nil, a)
		if cluster.ErrorCode(err) != tt.code {
			t.Errorf("%s: got %v, want %s", tt.said, err, tt.code)
		}
		if !slices.Equal(n.removed, []string{"docker.io/library/app:dev"}) {
			t.Errorf("%s: removed %v, want the name the import created", tt.said, n.removed)
		}
	}
}
