package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/smek/action/internal/client/clienttest"
	"github.com/smek/action/internal/wire"
)

// imageAPI serves POST /v1/clusters/{id}/images by the contract the server
// implements, strictly, in front of the clienttest fake for every other
// route (whose clusters it loads into):
//   - Bearer auth (401), an unknown cluster is a 404, one not running a 409;
//   - Content-Type application/x-tar or application/gzip, else 415;
//   - a body past Limit is a 413 naming the limit, whether Content-Length
//     announces it or a chunked stream reaches it;
//   - the archive must be a `docker save` tar (manifest.json and the
//     files it names) or an OCI image layout (oci-layout, index.json and
//     the manifests' blobs), else 400;
//   - NoSpace answers 507 as a full node would.
//
// Differences from the server: nothing is imported; a `docker save`
// archive without an OCI index gets the digest of its manifest.json
// entry (containerd computes the converted manifest's).
type imageAPI struct {
	*httptest.Server
	api     *clienttest.Server
	Limit   int64
	NoSpace bool

	mu    sync.Mutex // guards loads
	loads []imageUpload
}

// imageUpload is one request the fake answered.
type imageUpload struct {
	ClusterID   string
	ContentType string
	// ContentLength is -1 for a chunked body.
	ContentLength int64
	Status        int
	Images        []wire.Image
	// Bytes is what the fake read of the body.
	Bytes int64
}

func newImageAPI(t *testing.T, api *clienttest.Server) *imageAPI {
	t.Helper()
	target, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	f := &imageAPI{api: api, Limit: 64 << 20}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/clusters/{id}/images", f.load)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// Loads returns the uploads answered so far.
func (f *imageAPI) Loads() []imageUpload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.loads)
}

func (f *imageAPI) problem(w http.ResponseWriter, up *imageUpload, status int, code, detail string) {
	up.Status = status
	w.Header().Set("Content-Type", wire.MediaProblem)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.Problem{Type: "https://smek.dev/problems/" + code, Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
}

func (f *imageAPI) load(w http.ResponseWriter, r *http.Request) {
	up := imageUpload{ClusterID: r.PathValue("id"), ContentType: r.Header.Get("Content-Type"), ContentLength: r.ContentLength}
	defer func() {
		f.mu.Lock()
		f.loads = append(f.loads, up)
		f.mu.Unlock()
	}()
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !slices.Contains(f.api.Tokens, bearer) {
		f.problem(w, &up, http.StatusUnauthorized, "unauthorized", "missing, invalid or revoked token")
		return
	}
	cl, ok := f.api.Cluster(up.ClusterID)
	if !ok {
		f.problem(w, &up, http.StatusNotFound, "not-found", "no cluster "+up.ClusterID)
		return
	}
	if cl.ClusterStatus != "running" {
		f.problem(w, &up, http.StatusConflict, "conflict", "cluster is "+cl.ClusterStatus)
		return
	}
	media, _, err := mime.ParseMediaType(up.ContentType)
	if err != nil || (media != "application/x-tar" && media != "application/gzip") {
		f.problem(w, &up, http.StatusUnsupportedMediaType, "unsupported-media-type", fmt.Sprintf("Content-Type %q: send application/x-tar or application/gzip", up.ContentType))
		return
	}
	tooLarge := fmt.Sprintf("the archive is larger than the limit of %d bytes", f.Limit)
	if r.ContentLength > f.Limit {
		f.problem(w, &up, http.StatusRequestEntityTooLarge, "too-large", tooLarge)
		return
	}
	received := &byteCounter{r: http.MaxBytesReader(w, r.Body, f.Limit)}
	var body io.Reader = received
	if media == "application/gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			f.bad(w, &up, tooLarge, fmt.Errorf("gzip: %w", err))
			return
		}
		body = zr
	}
	images, err := readImageArchive(body)
	if err != nil {
		f.bad(w, &up, tooLarge, err)
		return
	}
	if f.NoSpace {
		f.problem(w, &up, http.StatusInsufficientStorage, "no-space", "no space left on the node's image store")
		return
	}
	up.Status, up.Images, up.Bytes = http.StatusOK, images, received.n
	w.Header().Set("Content-Type", wire.MediaJSON)
	json.NewEncoder(w).Encode(wire.ImageLoad{ClusterID: up.ClusterID, Images: images, Bytes: received.n})
}

// byteCounter counts the bytes read from r.
type byteCounter struct {
	r io.Reader
	n int64
}

func (c *byteCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// bad answers a body that could not be read: 413 when it was the limit,
// else 400.
func (f *imageAPI) bad(w http.ResponseWriter, up *imageUpload, tooLarge string, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		f.problem(w, up, http.StatusRequestEntityTooLarge, "too-large", tooLarge)
		return
	}
	f.problem(w, up, http.StatusBadRequest, "invalid", "not an image archive: "+err.Error())
}

// readImageArchive reads a whole image archive and returns its images.
func readImageArchive(r io.Reader) ([]wire.Image, error) {
	tr := tar.NewReader(r)
	files := map[string]bool{}
	meta := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		n := path.Clean(h.Name)
		files[n] = true
		if n == "manifest.json" || n == "index.json" || n == "oci-layout" {
			if meta[n], err = io.ReadAll(io.LimitReader(tr, 1<<20)); err != nil {
				return nil, fmt.Errorf("tar: %w", err)
			}
		}
	}
	// The tar's end is two zero blocks; the rest of a stream must be
	// read too, as the server does.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	if meta["oci-layout"] != nil && meta["index.json"] != nil {
		return ociImages(meta, files)
	}
	if meta["manifest.json"] != nil {
		return dockerImages(meta["manifest.json"], files)
	}
	return nil, errors.New("neither manifest.json (docker save) nor oci-layout and index.json (OCI image layout) in the tar")
}

func ociImages(meta map[string][]byte, files map[string]bool) ([]wire.Image, error) {
	var lay struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(meta["oci-layout"], &lay); err != nil || lay.Version != "1.0.0" {
		return nil, fmt.Errorf("oci-layout: %q is not version 1.0.0", meta["oci-layout"])
	}
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(meta["index.json"], &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var out []wire.Image
	for _, m := range idx.Manifests {
		algo, hex, ok := strings.Cut(m.Digest, ":")
		if !ok || !files[path.Join("blobs", algo, hex)] {
			return nil, fmt.Errorf("index.json: manifest %s is not in the archive", m.Digest)
		}
		ref := m.Annotations["io.containerd.image.name"]
		if ref == "" {
			ref = m.Annotations["org.opencontainers.image.ref.name"]
		}
		if ref == "" {
			continue
		}
		n, err := normalizedName(ref)
		if err != nil {
			return nil, fmt.Errorf("index.json: %w", err)
		}
		out = append(out, wire.Image{Name: n, Digest: m.Digest})
	}
	if len(out) == 0 {
		return nil, errors.New("index.json names no image")
	}
	return out, nil
}

func dockerImages(manifest []byte, files map[string]bool) ([]wire.Image, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(manifest, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []wire.Image
	for _, raw := range entries {
		var e struct {
			Config   string
			RepoTags []string
			Layers   []string
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("manifest.json: %w", err)
		}
		for _, f := range append([]string{e.Config}, e.Layers...) {
			if !files[path.Clean(f)] {
				return nil, fmt.Errorf("manifest.json: %q is not in the archive", f)
			}
		}
		sum := sha256.Sum256(raw)
		for _, tag := range e.RepoTags {
			n, err := normalizedName(tag)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			out = append(out, wire.Image{Name: n, Digest: "sha256:" + hex.EncodeToString(sum[:])})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("manifest.json names no image")
	}
	return out, nil
}

// normalizedName is the name containerd records for ref: app:dev is
// docker.io/library/app:dev.
func normalizedName(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	repo := strings.Replace(r.Context().Name(), "index.docker.io/", "docker.io/", 1)
	return repo + refSuffix(r), nil
}

func refSuffix(r name.Reference) string {
	if t, ok := r.(name.Tag); ok {
		return ":" + t.TagStr()
	}
	return "@" + r.Identifier()
}

// Image archives for the tests, built with go-containerregistry.

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// dockerSave writes the `docker save` archive of images (by tag).
func dockerSave(t *testing.T, w io.Writer, images map[string]v1.Image) {
	t.Helper()
	refs := map[name.Reference]v1.Image{}
	for tag, img := range images {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = img
	}
	if err := tarball.MultiRefWrite(refs, w); err != nil {
		t.Fatal(err)
	}
}

// ociArchive writes an OCI image layout holding img, named ref, as a tar.
func ociArchive(t *testing.T, w io.Writer, ref string, img v1.Image) {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"io.containerd.image.name": ref})); err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// tarOf writes a tar of files (name to content).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// savedFile writes a `docker save` archive of a random image tagged tag
// to dir/file and returns its path.
func savedFile(t *testing.T, dir, file, tag string) string {
	t.Helper()
	var b bytes.Buffer
	dockerSave(t, &b, map[string]v1.Image{tag: randomImage(t)})
	return writeFile(t, filepath.Join(dir, file), b.Bytes())
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func writeFile(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerEngineFake serves the Docker Engine API's GET /images/get on a
// unix socket, as dockerd does: the images found as one `docker save`
// stream (Content-Type application/x-tar), a 404 {"message": "No such
// image: ..."} before any byte when one is missing. BreakAfter, when
// positive, makes the stream break off after that many bytes, as when the
// daemon dies mid-export.
type dockerEngineFake struct {
	Host       string // unix:///...
	Images     map[string]v1.Image
	BreakAfter int

	mu       sync.Mutex // guards requests
	requests []url.Values
}

// listenUnix listens on a unix socket of its own, at a short path: a
// unix socket's must fit in 108 bytes, more than t.TempDir() leaves.
func listenUnix(t *testing.T) (string, *net.UnixListener) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "engine.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return sock, ln
}

func newDockerEngineFake(t *testing.T, images map[string]v1.Image) *dockerEngineFake {
	t.Helper()
	sock, ln := listenUnix(t)
	d := &dockerEngineFake{Host: "unix://" + sock, Images: images}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /images/get", d.get)
	mux.HandleFunc("GET /{version}/images/get", d.get)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	return d
}

func (d *dockerEngineFake) Requests() []url.Values {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

func (d *dockerEngineFake) get(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d.mu.Lock()
	d.requests = append(d.requests, q)
	d.mu.Unlock()
	found := map[string]v1.Image{}
	for _, n := range q["names"] {
		img, ok := d.Images[n]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"message": "No such image: " + n})
			return
		}
		found[n] = img
	}
	var buf bytes.Buffer
	refs := map[name.Reference]v1.Image{}
	for n, img := range found {
		ref, err := name.NewTag(n)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		refs[ref] = img
	}
	if err := tarball.MultiRefWrite(refs, &buf); err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	b := buf.Bytes()
	if d.BreakAfter > 0 {
		w.Write(b[:d.BreakAfter])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.Write(b)
}
