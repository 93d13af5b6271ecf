package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/wire"
)

// imageArgs splits what a user asked to load into archive files and image
// references, in the order given. An argument is a file when it names an
// existing one, and must be one when it looks like a path (starts with /,
// ./ or ../, or ends with .tar, .tar.gz or .tgz); anything else is an
// image reference for the Docker Engine. Relative paths are resolved
// against dir ("" for the working directory).
func imageArgs(dir string, args []string) (files, refs []string, err error) {
	for _, a := range args {
		p := a
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if _, statErr := os.Stat(p); statErr == nil {
			files = append(files, p)
			continue
		} else if looksLikePath(a) {
			if errors.Is(statErr, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("image archive %s: no such file", p)
			}
			return nil, nil, fmt.Errorf("image archive %s: %w", p, statErr)
		}
		if strings.HasPrefix(a, "-") || strings.ContainsAny(a, " \t\n") {
			return nil, nil, fmt.Errorf("%q is neither a file nor an image reference", a)
		}
		refs = append(refs, a)
	}
	return files, refs, nil
}

func looksLikePath(a string) bool {
	for _, s := range []string{"/", "./", "../"} {
		if strings.HasPrefix(a, s) {
			return true
		}
	}
	for _, s := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(a, s) {
			return true
		}
	}
	return false
}

// archive is one request body for LoadImages.
type archive struct {
	name        string // what the user named: a file, or image references
	r           io.ReadCloser
	size        int64 // -1 when unknown
	contentType string
}

// errNotArchive is a file that cannot be an image archive.
var errNotArchive = errors.New("not an image archive")

// openArchive opens an image archive file and checks, before anything is
// sent, that it can be one: gzip (by its magic number) over a tar, or a
// plain tar that holds a `docker save` manifest.json or an OCI image
// layout (oci-layout and index.json). The shape of a compressed archive is
// left to the server, so as not to decompress it twice.
func openArchive(name string) (*archive, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("image archive %s: %w", name, err)
	}
	a, err := checkArchive(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image archive %s: %w", name, err)
	}
	a.name = name
	return a, nil
}

func checkArchive(f *os.File) (*archive, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file", errNotArchive)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	a := &archive{r: f, size: fi.Size(), contentType: client.MediaTar}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		a.contentType = client.MediaGzip
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", errNotArchive, err)
		}
		if _, err := tar.NewReader(zr).Next(); err != nil {
			return nil, fmt.Errorf("%w: gzip, but not of a tar: %v", errNotArchive, err)
		}
	case len(head) == 512 && bytes.HasPrefix(head[257:], []byte("ustar")):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if err := checkLayout(tar.NewReader(f)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: neither a tar nor a gzip file", errNotArchive)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return a, nil
}

// checkLayout reads a tar's headers (a file's tar.Reader seeks over the
// contents) for the files that make it an image archive.
func checkLayout(tr *tar.Reader) error {
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: tar: %v", errNotArchive, err)
		}
		seen[path.Clean(h.Name)] = true
	}
	if seen["manifest.json"] || (seen["oci-layout"] && seen["index.json"]) {
		return nil
	}
	return fmt.Errorf("%w: a tar without manifest.json (docker save) or oci-layout and index.json (OCI image layout)", errNotArchive)
}

// sourceReader keeps the first error of the stream it reads, so that a
// broken `docker save` is reported as such and not as the upload's
// failure it causes.
type sourceReader struct {
	io.ReadCloser
	// mu guards err: the HTTP transport may still read the request body
	// after the answer came.
	mu  sync.Mutex
	err error
}

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.ReadCloser.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		s.mu.Lock()
		if s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
	return n, err
}

// failed returns the stream's first error, nil if none.
func (s *sourceReader) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// imageLoader loads archives into one cluster, printing progress to w.
type imageLoader struct {
	p   *program
	c   *client.Client
	id  string
	w   io.Writer
	dir string // resolves relative file names; "" is the working directory
	// dockerHost is the Docker Engine's address ("" for the default).
	dockerHost string
	// loaded are the images the cluster imported so far.
	loaded []wire.Image
}

// load sends the files one request each, then the image references as one
// Docker Engine export, and lists what the cluster imported.
func (l *imageLoader) load(ctx context.Context, args []string) error {
	files, refs, err := imageArgs(l.dir, args)
	if err != nil {
		return err
	}
	// Every file is checked before the first byte is sent.
	var archives []*archive
	defer func() {
		for _, a := range archives {
			a.r.Close()
		}
	}()
	for _, f := range files {
		a, err := openArchive(f)
		if err != nil {
			return err
		}
		archives = append(archives, a)
	}
	var engine *dockerEngine
	if len(refs) > 0 {
		if engine, err = newDockerEngine(l.dockerHost); err != nil {
			return err
		}
	}
	for _, a := range archives {
		if err := l.send(ctx, a, nil); err != nil {
			return err
		}
	}
	if engine == nil {
		return nil
	}
	stream, err := engine.save(ctx, refs)
	if err != nil {
		return err
	}
	src := &sourceReader{ReadCloser: stream}
	defer src.Close()
	return l.send(ctx, &archive{name: strings.Join(refs, " "), r: src, size: -1, contentType: client.MediaTar}, src)
}

// send uploads one archive with progress lines; src, when not nil, is the
// Docker Engine's stream, whose own failure is reported first.
func (l *imageLoader) send(ctx context.Context, a *archive, src *sourceReader) error {
	pr := l.p.uploadProgress(l.w, a.name, a.size)
	res, err := l.c.LoadImages(ctx, l.id, pr.reader(a.r), a.size, a.contentType)
	pr.stop()
	if src != nil {
		if serr := src.failed(); serr != nil {
			return fmt.Errorf("load %s: the Docker Engine's export broke off: %w", a.name, serr)
		}
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", a.name, l.explain(ctx, err))
	}
	fmt.Fprintf(l.w, "Loaded %s into %s (%s):\n", a.name, res.ClusterID, formatBytes(res.Bytes))
	for _, img := range res.Images {
		fmt.Fprintf(l.w, "  %s %s\n", img.Name, img.Digest)
	}
	l.loaded = append(l.loaded, res.Images...)
	return nil
}

// explain says what an image upload's error means for the user.
func (l *imageLoader) explain(ctx context.Context, err error) error {
	apiErr, ok := errors.AsType[*client.Error](err)
	if !ok {
		return explain(err, l.c.BaseURL(), 0)
	}
	msg := apiErr.Message()
	switch {
	case client.IsNotFound(err):
		return explained(err, "no cluster %s among this token's clusters (404): check the id, or SMEK_CLUSTER_ID", l.id)
	case client.IsConflict(err):
		status := "not running"
		if cl, gerr := l.c.Get(ctx, l.id); gerr == nil {
			status = cl.ClusterStatus
		}
		if status == "stopped" || status == "hibernated" {
			return explained(err, "cluster %s is %s; start it first (smek start %s)", l.id, status, l.id)
		}
		return explained(err, "cluster %s is %s; images load only into a running cluster (409: %s)", l.id, status, msg)
	case client.IsTooLarge(err):
		return explained(err, "the archive is larger than the server takes (413): %s", msg)
	case client.IsNoSpace(err):
		return explained(err, "the node of cluster %s has no room for these images (507): %s", l.id, msg)
	case client.IsInvalid(err):
		return explained(err, "the server found no images to load in the archive (400): %s", msg)
	case client.IsUnsupportedMediaType(err):
		return explained(err, "the server does not take this archive's type (415): %s", msg)
	case client.IsNotImplemented(err):
		return explained(err, "cluster %s cannot import images (501): %s", l.id, msg)
	}
	return explain(err, l.c.BaseURL(), 0)
}
