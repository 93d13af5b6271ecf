package local

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/smek/action/internal/kube/packaged"
)

// Images every local node can pull without a registry: the node's
// containerd is told to try the backend's mirror first for the registries
// they come from (see containerdHosts).
const (
	// BusyboxImage is the image `kubectl run x --image=busybox` asks for.
	BusyboxImage = "docker.io/library/busybox:latest"
	// PauseImage is containerd's sandbox image.
	PauseImage = "registry.k8s.io/pause:3.10"
	// CoreDNSImage is the cluster DNS, from bin/kube/coredns (the name
	// k3s's airgap images give CoreDNS).
	CoreDNSImage = "docker.io/rancher/mirrored-coredns-coredns:1.15.0"
)

// mirroredRegistries are the registries whose pulls try the mirror first.
var mirroredRegistries = []string{"docker.io", "registry.k8s.io"}

// mirror is a read-only OCI distribution registry that holds the images
// every node carries. It serves the nodes' containerd on the host side of
// every node's link; tenants' pods can reach it too and may pull the same
// public images, nothing else: every method but GET and HEAD is refused.
type mirror struct {
	handler http.Handler
}

// newMirror builds the preloaded images from the host's static busybox
// and pushes them into an in-memory registry.
func newMirror(busybox, localPath, coredns string) (*mirror, error) {
	layer, err := busyboxLayer(busybox)
	if err != nil {
		return nil, err
	}
	lpLayer, err := fileLayer(localPath, "usr/bin/local-path-provisioner")
	if err != nil {
		return nil, err
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	// The images are pushed over loopback, as any client pushes: the
	// registry handler relies on a real server's requests.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	defer srv.Close()
	push := func(ref string, cfg v1.Config, extra ...v1.Layer) error {
		img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{layer}, extra...)...)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.Architecture, cf.OS, cf.Config = runtime.GOARCH, "linux", cfg
		// A fixed date keeps the image digests the same on every machine.
		cf.Created = v1.Time{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		tag, err := name.NewTag(l.Addr().String()+"/"+mirrorRepo(ref), name.Insecure)
		if err != nil {
			return err
		}
		return remote.Write(tag, img)
	}
	path := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := push(BusyboxImage, v1.Config{Env: path, Cmd: []string{"sh"}}); err != nil {
		return nil, fmt.Errorf("build %s: %w", BusyboxImage, err)
	}
	// The sandbox only holds the pod's namespaces: containerd kills it
	// with SIGKILL, which is all a sleeping busybox needs.
	if err := push(PauseImage, v1.Config{Env: path, Entrypoint: []string{"/bin/sleep", "2147483647"}}); err != nil {
		return nil, fmt.Errorf("build %s: %w", PauseImage, err)
	}
	dnsLayer, err := fileLayer(coredns, "coredns")
	if err != nil {
		return nil, err
	}
	if err := push(CoreDNSImage, v1.Config{Env: path, Entrypoint: []string{"/coredns"}}, dnsLayer); err != nil {
		return nil, fmt.Errorf("build %s: %w", CoreDNSImage, err)
	}
	// k3s's local-storage component: the provisioner, and busybox for
	// its helper pods.
	if err := push(packaged.LocalPathProvisionerImage, v1.Config{Env: path}, lpLayer); err != nil {
		return nil, fmt.Errorf("build %s: %w", packaged.LocalPathProvisionerImage, err)
	}
	if err := push(packaged.LocalPathHelperImage, v1.Config{Env: path, Cmd: []string{"sh"}}); err != nil {
		return nil, fmt.Errorf("build %s: %w", packaged.LocalPathHelperImage, err)
	}
	return &mirror{handler: reg}, nil
}

// mirrorRepo maps an image reference to the repository and tag the mirror
// stores it under: what containerd asks a mirror for, the path after the
// registry host.
func mirrorRepo(ref string) string {
	for _, r := range mirroredRegistries {
		if rest, ok := strings.CutPrefix(ref, r+"/"); ok {
			return rest
		}
	}
	return ref
}

// ServeHTTP answers pulls and refuses everything else.
func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the SMEK image mirror is read-only", http.StatusMethodNotAllowed)
		return
	}
	m.handler.ServeHTTP(w, r)
}

// fileLayer is a layer with the executable at path as name.
func fileLayer(path, name string) (v1.Layer, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(bin)), ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

// busyboxLayer is a root filesystem with the static busybox at /bin/busybox,
// a link for each of its applets, and the files a shell expects.
func busyboxLayer(busybox string) (v1.Layer, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read static busybox (Debian package busybox-static): %w", err)
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	file := func(name string, mode int64, body []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: mtime})
		tw.Write(body)
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys", "dev"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	file("bin/busybox", 0o755, bin)
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n"))
	for _, applet := range strings.Fields(string(out)) {
		if applet == "bin/busybox" || strings.Count(applet, "/") > 2 {
			continue
		}
		target := strings.Repeat("../", strings.Count(applet, "/")) + "bin/busybox"
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: target, Mode: 0o777, ModTime: mtime})
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
