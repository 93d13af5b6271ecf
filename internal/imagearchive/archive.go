// Package imagearchive reads the image archives SMEK loads into a
// cluster's node: a `docker save` stream or an OCI image layout in a tar,
// as containerd's importer (core/images/archive/importer.go) takes them.
// It refuses what containerd would refuse, with containerd's words, and
// what containerd would take but leave unusable to the kubelet (an image
// without a full name), before anything touches a node.
package imagearchive

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"

	ocispec "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ErrInvalid is wrapped by every error that says the archive is not one
// containerd can import.
var ErrInvalid = errors.New("not a docker save or OCI image archive")

// Image is one named image of an archive.
type Image struct {
	// Name is the full reference containerd records (docker.io/library/app:dev).
	Name string
	// Digest is the manifest digest: the one the OCI index names, or for
	// a docker save archive the one of the manifest containerd writes on
	// import (see dockerManifest).
	Digest string
}

// Names used by containerd's importer.
const (
	layoutFile   = "oci-layout"
	indexFile    = "index.json"
	manifestFile = "manifest.json"
	// layoutVersion is the only OCI layout version containerd imports.
	layoutVersion = "1.0.0"
	// jsonLimit bounds a JSON file, as containerd's importer does.
	jsonLimit = 20 << 20
	// keepLimit bounds the small blobs kept in memory to read an OCI
	// layout's manifests and indexes.
	keepLimit = 4 << 20

	annotationImageName = "io.containerd.image.name"
	annotationRefName   = "org.opencontainers.image.ref.name"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// contents is what one pass over the tar found.
type contents struct {
	files    map[string]int64  // regular files: size
	symlinks map[string]string // name: target
	digests  map[string]string // blobs/ALG/HEX: the sha256 of the content
	small    map[string][]byte // blobs small enough to be manifests
	heads    map[string][]byte // the first bytes of every file
	layout   *struct {
		Version string `json:"imageLayoutVersion"`
	}
	manifest tarball.Manifest
	index    []byte
}

// Inspect reads the tar archive at path and returns the images it names.
// Every error but an I/O error of path wraps ErrInvalid.
func Inspect(path string) ([]Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}

// Read reads a tar archive and returns the images it names.
func Read(r io.Reader) ([]Image, error) {
	c, err := scan(r)
	if err != nil {
		return nil, err
	}
	if c.layout != nil {
		return c.oci()
	}
	if c.manifest == nil {
		return nil, invalid("unrecognized image format: no %s (docker save) nor %s (OCI layout)", manifestFile, layoutFile)
	}
	return c.docker()
}

func scan(r io.Reader) (*contents, error) {
	c := &contents{files: map[string]int64{}, symlinks: map[string]string{}, digests: map[string]string{}, small: map[string][]byte{}, heads: map[string][]byte{}}
	tr := tar.NewReader(r)
	kept := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, invalid("read tar: %v", err)
		}
		if hdr.Typeflag == tar.TypeSymlink {
			c.symlinks[hdr.Name] = path.Join(path.Dir(hdr.Name), hdr.Linkname)
		}
		if hdr.Typeflag != tar.TypeReg { // the reader turns the old TypeRegA into TypeReg
			continue
		}
		name := path.Clean(hdr.Name)
		switch name {
		case layoutFile:
			if err := decodeJSON(tr, &c.layout); err != nil {
				return nil, invalid("untar oci layout %q: %v", hdr.Name, err)
			}
			if c.layout == nil {
				c.layout = &struct {
					Version string `json:"imageLayoutVersion"`
				}{}
			}
			continue
		case manifestFile:
			if err := decodeJSON(tr, &c.manifest); err != nil {
				return nil, invalid("untar manifest %q: %v", hdr.Name, err)
			}
			if c.manifest == nil {
				c.manifest = tarball.Manifest{}
			}
			continue
		}
		h := sha256.New()
		var keep []byte
		head := &headWriter{}
		var body io.Reader = io.TeeReader(tr, head)
		if name == indexFile && hdr.Size > jsonLimit {
			return nil, invalid("%s is larger than %d bytes", indexFile, jsonLimit)
		}
		if name == indexFile || hdr.Size <= keepLimit && kept+int(hdr.Size) <= jsonLimit {
			// The header's size is the archive's word: the buffer grows
			// with what is read, not with what is announced.
			body = io.TeeReader(body, (*appender)(&keep))
			keep = []byte{}
		}
		n, err := io.Copy(h, body)
		if err != nil {
			return nil, invalid("read %q: %v", hdr.Name, err)
		}
		c.files[name] = n
		c.heads[name] = head.b
		if name == indexFile {
			c.index = keep
			continue
		}
		if keep != nil {
			kept += len(keep)
			c.small[name] = keep
		}
		c.digests[name] = hex.EncodeToString(h.Sum(nil))
	}
	return c, nil
}

// headWriter keeps the first bytes written to it.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if n := 4 - len(h.b); n > 0 {
		h.b = append(h.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

type appender []byte

func (a *appender) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

func decodeJSON(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, jsonLimit)).Decode(v)
}

// docker reads a docker save archive as containerd does: every image's
// config and layers must be files of the archive (or symlinks to them).
func (c *contents) docker() ([]Image, error) {
	for name, target := range c.symlinks {
		if _, ok := c.files[target]; !ok {
			return nil, invalid("no target for symlink layer from %q to %q", name, target)
		}
		c.files[name] = c.files[target]
	}
	var out []Image
	for i, d := range c.manifest {
		if _, ok := c.files[path.Clean(d.Config)]; !ok || d.Config == "" {
			return nil, invalid("image config %q not found", d.Config)
		}
		for _, l := range d.Layers {
			if _, ok := c.files[path.Clean(l)]; !ok || l == "" {
				return nil, invalid("failed to resolve layers: layer %q not found", l)
			}
		}
		digest, err := c.dockerManifest(d)
		if err != nil {
			return nil, err
		}
		if len(d.RepoTags) == 0 {
			return nil, invalid("%s entry %d has no RepoTags: containerd would import it without a name", manifestFile, i)
		}
		for _, t := range d.RepoTags {
			n, err := Normalize(t)
			if err != nil {
				return nil, invalid("%s entry %d: %v", manifestFile, i, err)
			}
			out = append(out, Image{Name: n, Digest: digest})
		}
	}
	return named(out)
}

// Media types of the manifest containerd writes for a docker save image.
const (
	mediaDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerConfig    = "application/vnd.docker.container.image.v1+json"
	mediaDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	mediaDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// dockerManifest returns the digest of the manifest containerd's importer
// writes for image d of a docker save archive: schema 2, the config and
// the layers as the archive's files, a layer's media type detected from
// its first bytes (uncompressed or not). It is the digest `ctr images ls`
// shows, unless the store already held a compressed copy of a layer.
func (c *contents) dockerManifest(d tarball.Descriptor) (string, error) {
	desc := func(file, mediaType string) descriptor {
		file = path.Clean(file)
		return descriptor{MediaType: mediaType, Digest: "sha256:" + c.digests[file], Size: c.files[file]}
	}
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: mediaDockerManifest, Config: desc(c.target(d.Config), mediaDockerConfig), Layers: []descriptor{}}
	for _, l := range d.Layers {
		l = c.target(l)
		mt := mediaDockerLayer
		if h := c.heads[path.Clean(l)]; len(h) > 0 && !isUncompressed(h) {
			mt = mediaDockerLayerGzip
		}
		m.Layers = append(m.Layers, desc(l, mt))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// target follows a symlink of the archive.
func (c *contents) target(name string) string {
	if t, ok := c.symlinks[name]; ok {
		return t
	}
	return name
}

// isUncompressed says whether a blob starting with h is neither gzip nor
// zstd, as containerd's compression.DetectCompression decides.
func isUncompressed(h []byte) bool {
	gz := len(h) >= 3 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 0x08
	zstd := len(h) >= 4 && h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd
	return !gz && !zstd
}

// oci reads an OCI image layout as containerd imports it: the index's
// manifests for this machine's platform (the node's) and everything they
// reference must be blobs of the archive whose content matches its digest.
func (c *contents) oci() ([]Image, error) {
	if c.layout.Version != layoutVersion {
		return nil, invalid("unsupported OCI version %s", c.layout.Version)
	}
	if c.index == nil {
		return nil, invalid("missing %s in OCI layout %s", indexFile, layoutVersion)
	}
	idx, err := ocispec.ParseIndexManifest(strings.NewReader(string(c.index)))
	if err != nil {
		return nil, invalid("%s: %v", indexFile, err)
	}
	var out []Image
	for i, m := range idx.Manifests {
		if err := c.walk(m, 0); err != nil {
			return nil, err
		}
		name := m.Annotations[annotationImageName]
		if name == "" {
			name = m.Annotations[annotationRefName]
		}
		if name == "" {
			continue // containerd imports it without a name
		}
		full, err := Normalize(name)
		if err != nil {
			return nil, invalid("%s entry %d: %v", indexFile, i, err)
		}
		if full != name {
			return nil, invalid("%s entry %d: image name %q is not a full reference; containerd would record it as it is and the kubelet would not find it: name it %q", indexFile, i, name, full)
		}
		out = append(out, Image{Name: name, Digest: m.Digest.String()})
	}
	return named(out)
}

// maxDepth bounds nested indexes.
const maxDepth = 8

// walk checks that the blob of d and everything it references for this
// platform are in the archive.
func (c *contents) walk(d ocispec.Descriptor, depth int) error {
	if depth > maxDepth {
		return invalid("indexes nested deeper than %d", maxDepth)
	}
	if d.Digest.Algorithm != "sha256" || len(d.Digest.Hex) != 64 {
		return invalid("content digest %q: unsupported digest", d.Digest.String())
	}
	blob := "blobs/sha256/" + d.Digest.Hex
	got, ok := c.digests[blob]
	if !ok {
		return invalid("content digest %s: not found", d.Digest)
	}
	if got != d.Digest.Hex {
		return invalid("content digest %s: the blob's content has digest sha256:%s", d.Digest, got)
	}
	if c.files[blob] != d.Size {
		return invalid("content digest %s: size %d, the descriptor says %d", d.Digest, c.files[blob], d.Size)
	}
	switch {
	case d.MediaType.IsIndex():
		raw, ok := c.small[blob]
		if !ok {
			return invalid("index %s is larger than %d bytes", d.Digest, keepLimit)
		}
		idx, err := ocispec.ParseIndexManifest(strings.NewReader(string(raw)))
		if err != nil {
			return invalid("index %s: %v", d.Digest, err)
		}
		found := false
		for _, m := range idx.Manifests {
			if m.Platform != nil && (m.Platform.OS != "linux" || m.Platform.Architecture != runtime.GOARCH) {
				continue // not imported for this node
			}
			found = true
			if err := c.walk(m, depth+1); err != nil {
				return err
			}
		}
		if !found {
			return invalid("index %s has no manifest for linux/%s", d.Digest, runtime.GOARCH)
		}
	case d.MediaType.IsImage():
		raw, ok := c.small[blob]
		if !ok {
			return invalid("manifest %s is larger than %d bytes", d.Digest, keepLimit)
		}
		m, err := ocispec.ParseManifest(strings.NewReader(string(raw)))
		if err != nil {
			return invalid("manifest %s: %v", d.Digest, err)
		}
		for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if err := c.walk(l, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// named refuses an archive that names no image and drops repeated names.
func named(imgs []Image) ([]Image, error) {
	if len(imgs) == 0 {
		return nil, invalid("the archive names no image")
	}
	seen := map[string]bool{}
	out := imgs[:0]
	for _, im := range imgs {
		if !seen[im.Name] {
			seen[im.Name] = true
			out = append(out, im)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
