package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/smek/action/internal/client"
)

// Bounds of a diagnostics bundle on the runner. The server keeps its
// bundles to 32 MiB of logs and listings plus small summaries; these
// bounds only hold a broken or hostile answer off the runner's disk.
const (
	maxBundleBytes = 64 << 20
	maxBundleFiles = 20000
	// maxSummaryBytes bounds the summary.md handed to the job summary.
	maxSummaryBytes = 64 << 10
	// summaryFile is the bundle's summary of the failing pods, in Markdown.
	summaryFile = "summary.md"
)

// fetchDiagnostics downloads the diagnostics bundle of cluster id into dir
// and returns its summary (Markdown, for the job summary).
func (p *program) fetchDiagnostics(ctx context.Context, c *client.Client, id, dir string) (string, error) {
	return p.fetchDiagnosticsTail(ctx, c, id, dir, 0)
}

// fetchDiagnosticsTail is fetchDiagnostics keeping tailLines lines of each
// log (0: the server's default).
func (p *program) fetchDiagnosticsTail(ctx context.Context, c *client.Client, id, dir string, tailLines int) (string, error) {
	body, err := c.Diagnostics(ctx, id, tailLines)
	if err != nil {
		return "", explain(err, c.BaseURL(), 0)
	}
	defer body.Close()
	summary, err := extractBundle(body, dir, maxBundleBytes)
	if err != nil {
		return summary, fmt.Errorf("diagnostics of %s: %w", id, err)
	}
	return summary, nil
}

// errBundle is a bundle the action refuses to unpack.
var errBundle = errors.New("refused bundle")

// extractBundle unpacks a tar.gz of regular files into dir (created if
// needed) and returns the content of its summary.md. It refuses absolute
// names, names with "..", links and every other kind of entry, repeated
// names, and more than limit bytes or maxBundleFiles files; writes go
// through an os.Root, so no name leaves dir, not even by a symlink already
// in it. What was unpacked before an error stays.
func extractBundle(r io.Reader, dir string, limit int64) (string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", fmt.Errorf("read bundle: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	tr := tar.NewReader(zr)
	seen := map[string]bool{}
	var summary string
	for total := int64(0); ; {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return summary, fmt.Errorf("read bundle: %w", err)
		}
		name, err := bundleName(hdr)
		if err != nil {
			return summary, err
		}
		if seen[name] {
			return summary, fmt.Errorf("%w: %q appears twice", errBundle, name)
		}
		seen[name] = true
		if len(seen) > maxBundleFiles {
			return summary, fmt.Errorf("%w: more than %d files", errBundle, maxBundleFiles)
		}
		if total += hdr.Size; total > limit {
			return summary, fmt.Errorf("%w: more than %d bytes", errBundle, limit)
		}
		data, err := writeEntry(root, name, tr, hdr.Size)
		if err != nil {
			return summary, err
		}
		if name == summaryFile {
			summary = string(data)
		}
	}
	if err := zr.Close(); err != nil {
		return summary, fmt.Errorf("read bundle: %w", err)
	}
	if !seen[summaryFile] {
		return "", fmt.Errorf("%w: no %s", errBundle, summaryFile)
	}
	return summary, nil
}

// bundleName checks an entry and returns its name as a local path.
func bundleName(hdr *tar.Header) (string, error) {
	if hdr.Typeflag != tar.TypeReg {
		return "", fmt.Errorf("%w: %q is not a regular file (type %q)", errBundle, hdr.Name, hdr.Typeflag)
	}
	name := hdr.Name
	if name == "" || strings.Contains(name, `\`) || path.IsAbs(name) || !filepath.IsLocal(name) || path.Clean(name) != name {
		return "", fmt.Errorf("%w: the name %q leaves the folder or is not clean", errBundle, name)
	}
	if hdr.Size < 0 {
		return "", fmt.Errorf("%w: %q has a negative size", errBundle, name)
	}
	return name, nil
}

// writeEntry writes size bytes of r to name under root, returning them
// too when name is the summary.
func writeEntry(root *os.Root, name string, r io.Reader, size int64) ([]byte, error) {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", name, err)
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", name, err)
	}
	var keep strings.Builder
	w := io.Writer(f)
	if name == summaryFile {
		w = io.MultiWriter(f, &capped{w: &keep, n: maxSummaryBytes})
	}
	_, err = io.CopyN(w, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("unpack %s: %w", name, err)
	}
	return []byte(keep.String()), nil
}

// capped writes at most n bytes to w and drops the rest.
type capped struct {
	w io.Writer
	n int64
}

func (c *capped) Write(b []byte) (int, error) {
	if k := min(int64(len(b)), c.n); k > 0 {
		if _, err := c.w.Write(b[:k]); err != nil {
			return 0, err
		}
		c.n -= k
	}
	return len(b), nil
}

func diagnosticsFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	dir := fs.String("dir", "", "unpack into `path` (default ./smek-diagnostics-<id>)")
	tail := fs.Int("tail-lines", 0, "keep the last `n` lines of each container log (server default 200, at most 10000)")
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		if *tail < 0 {
			return usagef("--tail-lines: %d must not be negative", *tail)
		}
		if *dir == "" {
			*dir = "smek-diagnostics-" + id
		}
		summary, err := p.fetchDiagnosticsTail(ctx, c, id, *dir, *tail)
		if err != nil {
			return err
		}
		fmt.Fprintf(p.stdout, "Diagnostics of %s in %s\n\n%s", id, *dir, summary)
		return nil
	}
}
