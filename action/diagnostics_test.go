package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/client/clienttest"
)

// bundleEntry is one tar entry of a hand-made bundle.
type bundleEntry struct {
	name, body, link string
	typ              byte
}

func bundleTar(t testing.TB, entries ...bundleEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// outside lists what is in parent besides dir: what an extraction must
// never create.
func outside(t testing.TB, parent, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if de.Name() != filepath.Base(dir) {
			out = append(out, de.Name())
		}
	}
	return out
}

func TestExtractBundle(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "diag")
	bundle := gzipped(t, bundleTar(t,
		bundleEntry{name: "nodes.txt", body: "node n1\n"},
		bundleEntry{name: "logs/default/crash/app.previous.log", body: "boom\n"},
		bundleEntry{name: "summary.md", body: "### Cluster diagnostics\n"},
	))
	summary, err := extractBundle(bytes.NewReader(bundle), dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if summary != "### Cluster diagnostics\n" {
		t.Errorf("summary = %q", summary)
	}
	for name, want := range map[string]string{"nodes.txt": "node n1\n", "logs/default/crash/app.previous.log": "boom\n", "summary.md": summary} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if o := outside(t, parent, dir); len(o) != 0 {
		t.Errorf("extraction wrote outside its folder: %v", o)
	}
}

func TestExtractBundleRefuses(t *testing.T) {
	summary := bundleEntry{name: "summary.md", body: "ok"}
	for _, tc := range []struct {
		name    string
		entries []bundleEntry
		limit   int64
	}{
		{"absolute", []bundleEntry{{name: "/tmp/smek-escape", body: "x"}, summary}, 0},
		{"dot-dot", []bundleEntry{{name: "../escape", body: "x"}, summary}, 0},
		{"dot-dot inside", []bundleEntry{{name: "logs/../../escape", body: "x"}, summary}, 0},
		{"unclean", []bundleEntry{{name: "logs/./a.log", body: "x"}, summary}, 0},
		{"backslash", []bundleEntry{{name: `..\escape`, body: "x"}, summary}, 0},
		{"symlink", []bundleEntry{{name: "logs", typ: tar.TypeSymlink, link: "/"}, {name: "logs/escape", body: "x"}, summary}, 0},
		{"hard link", []bundleEntry{{name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"}, summary}, 0},
		{"directory", []bundleEntry{{name: "logs/", typ: tar.TypeDir}, summary}, 0},
		{"fifo", []bundleEntry{{name: "fifo", typ: tar.TypeFifo}, summary}, 0},
		{"device", []bundleEntry{{name: "dev", typ: tar.TypeChar}, summary}, 0},
		{"twice", []bundleEntry{summary, summary}, 0},
		{"too large", []bundleEntry{{name: "big.log", body: strings.Repeat("x", 100)}, summary}, 64},
		{"no summary", []bundleEntry{{name: "nodes.txt", body: "x"}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "diag")
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			_, err := extractBundle(bytes.NewReader(gzipped(t, bundleTar(t, tc.entries...))), dir, limit)
			if !errors.Is(err, errBundle) {
				t.Errorf("got %v, want a refused bundle", err)
			}
			if o := outside(t, parent, dir); len(o) != 0 {
				t.Errorf("extraction wrote outside its folder: %v", o)
			}
		})
	}
}

// A symlink already in the folder does not lead a bundle out of it.
func TestExtractBundleStaysInsideExistingLinks(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "diag")
	away := filepath.Join(parent, "away")
	for _, d := range []string{dir, away} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(away, filepath.Join(dir, "logs")); err != nil {
		t.Fatal(err)
	}
	bundle := gzipped(t, bundleTar(t, bundleEntry{name: "logs/a.log", body: "x"}, bundleEntry{name: "summary.md", body: "ok"}))
	if _, err := extractBundle(bytes.NewReader(bundle), dir, 1<<20); err == nil {
		t.Error("a bundle wrote through a symlink that leaves its folder")
	}
	if des, err := os.ReadDir(away); err != nil || len(des) != 0 {
		t.Errorf("outside the folder: %v, %v", des, err)
	}
}

func TestExtractBundleNotGzip(t *testing.T) {
	if _, err := extractBundle(strings.NewReader("<html>proxy error</html>"), t.TempDir(), 1<<20); err == nil {
		t.Error("extracted a body that is not gzip")
	}
}

// FuzzExtractBundle: whatever tar the server (or something in its place)
// sends, the extraction does not panic, writes nothing outside its folder,
// only regular files and folders, and no more than its limit.
func FuzzExtractBundle(f *testing.F) {
	f.Add(bundleTar(f, bundleEntry{name: "nodes.txt", body: "n"}, bundleEntry{name: "logs/ns/p/c.log", body: "l"}, bundleEntry{name: "summary.md", body: "s"}))
	f.Add(bundleTar(f, bundleEntry{name: "../x", body: "x"}))
	f.Add(bundleTar(f, bundleEntry{name: "l", typ: tar.TypeSymlink, link: ".."}, bundleEntry{name: "l/x", body: "x"}))
	f.Add(bundleTar(f, bundleEntry{name: "a/b/../c", body: "x"}, bundleEntry{name: "a", typ: tar.TypeDir}))
	const limit = 4096
	f.Fuzz(func(t *testing.T, raw []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "diag")
		summary, _ := extractBundle(bytes.NewReader(gzipped(t, raw)), dir, limit)
		if len(summary) > maxSummaryBytes {
			t.Errorf("summary of %d bytes", len(summary))
		}
		if o := outside(t, parent, dir); len(o) != 0 {
			t.Fatalf("extraction wrote outside its folder: %v", o)
		}
		var total int64
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() && !info.IsDir() {
				t.Errorf("%s is %v", p, info.Mode())
			}
			if info.Mode().IsRegular() {
				total += info.Size()
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if total > limit {
			t.Errorf("unpacked %d bytes, limit %d", total, limit)
		}
	})
}

func TestCLIDiagnostics(t *testing.T) {
	c := newCLI(t)
	out := c.ok("create")
	id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	c.api.DiagnosticsBundle = clienttest.Bundle(map[string]string{
		"pods.txt":   "pod default/crash\n",
		"summary.md": "| default/crash | app | CrashLoopBackOff | 3 | 2 | back-off |\n",
	}, "pods.txt", "summary.md")

	dir := filepath.Join(t.TempDir(), "out")
	out = c.ok("diagnostics", id, "--dir", dir, "--tail-lines", "50")
	if !strings.Contains(out, "Diagnostics of "+id+" in "+dir) || !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("stdout = %q, want the folder and the summary", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pods.txt")); err != nil || string(b) != "pod default/crash\n" {
		t.Errorf("pods.txt = %q, %v", b, err)
	}
	calls := c.api.Calls()
	if last := calls[len(calls)-1]; last.Path != "/v1/clusters/"+id+"/diagnostics" {
		t.Errorf("last call %s %s", last.Method, last.Path)
	}

	// The default folder is ./smek-diagnostics-<id>.
	t.Chdir(t.TempDir())
	c.ok("diagnostics", id)
	if _, err := os.Stat(filepath.Join("smek-diagnostics-"+id, "summary.md")); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"diagnostics", id, "--tail-lines", "-1"}, "--tail-lines"},
		{[]string{"diagnostics", id, "--tail-lines", "20000"}, "tail-lines"},
		{[]string{"diagnostics", "c-zzzzzz"}, "c-zzzzzz"},
	} {
		if _, errOut, err := c.run(tc.args...); err == nil || !strings.Contains(errOut, tc.want) {
			t.Errorf("smek %s: %v, stderr %q; want an error naming %s", strings.Join(tc.args, " "), err, errOut, tc.want)
		}
	}
	c.ok("stop", id, "--force-terminate")
	if _, errOut, err := c.run("diagnostics", id); err == nil || !strings.Contains(errOut, "terminated") {
		t.Errorf("diagnostics of a terminated cluster: %v, stderr %q", err, errOut)
	}
}

// TestFetchDiagnostics: what the post step calls unpacks the bundle and
// hands back its summary; a cluster that is not running is an error that
// says so.
func TestFetchDiagnostics(t *testing.T) {
	c := newCLI(t)
	id := strings.TrimPrefix(lineWith(c.ok("create"), "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	p := newProgram(func(k string) string { return c.vars[k] }, &syncBuffer{}, &syncBuffer{})
	cl, err := client.New(c.api.URL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "diag")
	summary, err := p.fetchDiagnostics(t.Context(), cl, id, dir)
	if err != nil || summary != clienttest.FakeSummary {
		t.Fatalf("got %q, %v; want the fake's summary", summary, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "nodes.txt")); err != nil || !strings.Contains(string(b), id) {
		t.Errorf("nodes.txt = %q, %v", b, err)
	}
	c.ok("stop", id)
	if _, err := p.fetchDiagnostics(t.Context(), cl, id, t.TempDir()); !client.IsConflict(err) {
		t.Errorf("diagnostics of a stopped cluster: %v, want a conflict", err)
	}
}
