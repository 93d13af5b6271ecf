package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/wire"
)

// imageCLI is a shell whose SMEK_API_URL is the image fake in front of
// clienttest, with one running cluster in SMEK_CLUSTER_ID.
type imageCLI struct {
	*cliEnv
	images *imageAPI
	id     string
}

func newImageCLI(t *testing.T) *imageCLI {
	c := newCLI(t)
	f := newImageAPI(t, c.api)
	c.vars["SMEK_API_URL"] = f.URL
	out := c.ok("create", "--keep-cluster", "true")
	id := strings.TrimPrefix(lineWith(out, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	c.vars["SMEK_CLUSTER_ID"] = id
	return &imageCLI{cliEnv: c, images: f, id: id}
}

func names(imgs []wire.Image) []string {
	var out []string
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	slices.Sort(out)
	return out
}

func TestImageLoadFiles(t *testing.T) {
	c := newImageCLI(t)
	dir := t.TempDir()
	var save, oci bytes.Buffer
	dockerSave(t, &save, map[string]v1.Image{"app:dev": randomImage(t), "ghcr.io/octo/tool:1.2": randomImage(t)})
	ociArchive(t, &oci, "docker.io/library/web:v2", randomImage(t))
	saved := writeFile(t, filepath.Join(dir, "app.tar"), save.Bytes())
	layoutGz := writeFile(t, filepath.Join(dir, "web.oci.tar.gz"), gzipped(t, oci.Bytes()))

	_, stderr, err := c.run("image", "load", saved, layoutGz)
	if err != nil {
		t.Fatalf("image load: %v\n%s", err, stderr)
	}
	loads := c.images.Loads()
	if len(loads) != 2 {
		t.Fatalf("the server saw %d uploads, want one per file: %+v", len(loads), loads)
	}
	want := []struct {
		contentType string
		size        int
		names       []string
	}{
		{client.MediaTar, save.Len(), []string{"docker.io/library/app:dev", "ghcr.io/octo/tool:1.2"}},
		{client.MediaGzip, len(gzipped(t, oci.Bytes())), []string{"docker.io/library/web:v2"}},
	}
	for i, w := range want {
		l := loads[i]
		if l.Status != 200 || l.ClusterID != c.id || l.ContentType != w.contentType || l.ContentLength != int64(w.size) {
			t.Errorf("upload %d = %+v, want 200 for %s, %s with Content-Length %d", i, l, c.id, w.contentType, w.size)
		}
		if got := names(l.Images); !slices.Equal(got, w.names) {
			t.Errorf("upload %d imported %q, want %q", i, got, w.names)
		}
	}
	// The last lines list what the node has now.
	for _, s := range []string{"Loaded " + saved + " into " + c.id, "  docker.io/library/app:dev sha256:", "  docker.io/library/web:v2 sha256:"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
}

func TestImageLoadFromDockerEngine(t *testing.T) {
	c := newImageCLI(t)
	engine := newDockerEngineFake(t, map[string]v1.Image{"app:dev": randomImage(t), "redis:7": randomImage(t)})
	c.vars["DOCKER_HOST"] = engine.Host

	_, stderr, err := c.run("image", "load", "app:dev", "--cluster", c.id, "redis:7")
	if err != nil {
		t.Fatalf("image load: %v\n%s", err, stderr)
	}
	// One export with every reference, one upload of its stream as it
	// comes: chunked, no length known.
	if reqs := engine.Requests(); len(reqs) != 1 || !slices.Equal(reqs[0]["names"], []string{"app:dev", "redis:7"}) {
		t.Errorf("engine requests = %v, want one with names app:dev and redis:7", reqs)
	}
	loads := c.images.Loads()
	if len(loads) != 1 || loads[0].Status != 200 || loads[0].ContentType != client.MediaTar || loads[0].ContentLength != -1 {
		t.Fatalf("uploads = %+v, want one chunked application/x-tar", loads)
	}
	if loads[0].Bytes < 4096 {
		t.Errorf("the server read %d bytes of two images' export", loads[0].Bytes)
	}
	if got, want := names(loads[0].Images), []string{"docker.io/library/app:dev", "docker.io/library/redis:7"}; !slices.Equal(got, want) {
		t.Errorf("imported %q, want %q", got, want)
	}
	if want := "Loaded app:dev redis:7 into " + c.id + " (" + formatBytes(loads[0].Bytes) + "):"; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}

	// --docker-host wins over DOCKER_HOST.
	c.vars["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
	if _, stderr, err := c.run("image", "load", "--docker-host", engine.Host, "app:dev"); err != nil {
		t.Errorf("with --docker-host: %v\n%s", err, stderr)
	}
}

func TestImageLoadDockerEngineFailures(t *testing.T) {
	c := newImageCLI(t)
	engine := newDockerEngineFake(t, map[string]v1.Image{"app:dev": randomImage(t)})
	c.vars["DOCKER_HOST"] = engine.Host

	// A missing image: the engine's 404 before any byte, nothing sent.
	_, _, err := c.run("image", "load", "app:dev", "app:nope")
	if err == nil || !strings.Contains(err.Error(), "No such image: app:nope (404)") {
		t.Errorf("missing image: err = %v, want the engine's message", err)
	}
	if n := len(c.images.Loads()); n != 0 {
		t.Errorf("the server saw %d uploads for a failed export", n)
	}

	// A stream that breaks off ends the upload and is reported as the
	// export's failure.
	engine.BreakAfter = 3000
	_, _, err = c.run("image", "load", "app:dev")
	if err == nil || !strings.Contains(err.Error(), "the Docker Engine's export broke off") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("broken stream: err = %v, want the export's failure", err)
	}

	// No engine there.
	c.vars["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
	_, _, err = c.run("image", "load", "app:dev")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the Docker Engine at unix:///nonexistent/docker.sock") {
		t.Errorf("no engine: err = %v", err)
	}
	for _, host := range []string{"ssh://me@host", "npipe:////./pipe/docker_engine"} {
		c.vars["DOCKER_HOST"] = host
		if _, _, err := c.run("image", "load", "app:dev"); err == nil || !strings.Contains(err.Error(), "only unix:// and tcp://") {
			t.Errorf("DOCKER_HOST=%s: err = %v", host, err)
		}
	}
	c.vars["DOCKER_HOST"], c.vars["DOCKER_TLS_VERIFY"] = "tcp://127.0.0.1:2376", "1"
	if _, _, err := c.run("image", "load", "app:dev"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "DOCKER_TLS_VERIFY") {
		t.Errorf("DOCKER_TLS_VERIFY: err = %v, want a usage error naming it", err)
	}
	// The broken stream may or may not have reached the server before it
	// broke off; either way nothing was imported.
	for _, up := range c.images.Loads() {
		if up.Status == http.StatusOK {
			t.Errorf("the server imported an upload: %+v", up)
		}
	}
}

func TestImageLoadRefusesBeforeSending(t *testing.T) {
	c := newImageCLI(t)
	dir := t.TempDir()
	good := savedFile(t, dir, "good.tar", "app:dev")
	text := writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not an image\n"))
	// A tar of the wrong shape: a layout without its index.
	wrongTar := writeFile(t, filepath.Join(dir, "wrong.tar"), tarOf(t, map[string]string{"oci-layout": `{"imageLayoutVersion":"1.0.0"}`, "blobs/sha256/00": "{}"}))
	badGz := writeFile(t, filepath.Join(dir, "bad.tar.gz"), append([]byte{0x1f, 0x8b}, "garbage after the magic"...))
	gzText := writeFile(t, filepath.Join(dir, "text.gz"), gzipped(t, []byte("plain text, gzip'ed")))

	for _, tt := range []struct {
		arg, want string
	}{
		{filepath.Join(dir, "missing.tar"), "missing.tar: no such file"},
		{"./missing.tar.gz", "missing.tar.gz: no such file"},
		{text, "notes.txt: not an image archive: neither a tar nor a gzip file"},
		{wrongTar, "wrong.tar: not an image archive: a tar without manifest.json"},
		{badGz, "bad.tar.gz: not an image archive: gzip"},
		{gzText, "text.gz: not an image archive: gzip, but not of a tar"},
		{dir, "not an image archive: not a regular file"},
		{"-x", "flag provided but not defined: -x"},
	} {
		// The good file comes first: nothing is sent unless all are good.
		_, _, err := c.run("image", "load", good, tt.arg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("image load %s: err = %v, want %q", tt.arg, err, tt.want)
		}
	}
	if n := len(c.images.Loads()); n != 0 {
		t.Errorf("the server saw %d uploads", n)
	}
	if _, _, err := c.run("image", "load"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "takes at least one argument") {
		t.Errorf("without arguments: err = %v", err)
	}
	delete(c.vars, "SMEK_CLUSTER_ID")
	if _, _, err := c.run("image", "load", good); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "SMEK_CLUSTER_ID") {
		t.Errorf("without a cluster: err = %v", err)
	}
}

func TestImageLoadServerErrors(t *testing.T) {
	c := newImageCLI(t)
	dir := t.TempDir()
	good := savedFile(t, dir, "app.tar", "app:dev")
	engine := newDockerEngineFake(t, map[string]v1.Image{"app:dev": randomImage(t)})
	c.vars["DOCKER_HOST"] = engine.Host
	// A gzip'ed tar passes the client's check of its first header; the
	// server finds no image in it.
	noImage := writeFile(t, filepath.Join(dir, "x.tgz"), gzipped(t, tarOf(t, map[string]string{"README": "no image here"})))

	stopped := c.ok("create", "--keep-cluster", "true")
	stoppedID := strings.TrimPrefix(lineWith(stopped, "export SMEK_CLUSTER_ID="), "export SMEK_CLUSTER_ID=")
	c.ok("stop", stoppedID)

	for _, tt := range []struct {
		name  string
		setup func()
		args  []string
		want  string
		is    func(error) bool
	}{
		{"another account's or unknown", nil, []string{"--cluster", "c-zzzzzz", good}, "no cluster c-zzzzzz among this token's clusters (404)", client.IsNotFound},
		{"stopped", nil, []string{"--cluster", stoppedID, good}, "cluster " + stoppedID + " is stopped; start it first (smek start " + stoppedID + ")", client.IsConflict},
		{"too large by Content-Length", func() { c.images.Limit = 1000 }, []string{good}, "larger than the server takes (413): the archive is larger than the limit of 1000 bytes", client.IsTooLarge},
		{"too large streamed", func() { c.images.Limit = 1000 }, []string{"app:dev"}, "(413): the archive is larger than the limit of 1000 bytes", client.IsTooLarge},
		{"no space", func() { c.images.NoSpace = true }, []string{good}, "the node of cluster " + c.id + " has no room for these images (507)", client.IsNoSpace},
		{"not an image archive", nil, []string{noImage}, "no images to load in the archive (400): not an image archive", client.IsInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c.images.Limit, c.images.NoSpace = 64<<20, false
			if tt.setup != nil {
				tt.setup()
			}
			_, _, err := c.run(append([]string{"image", "load"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !tt.is(err) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestUploadProgress: a line at each tenth of a known size and at each
// tick, with the rate from the injected clock; one per tick for a stream.
func TestUploadProgress(t *testing.T) {
	var out syncBuffer
	p := newProgram(func(string) string { return "" }, &out, &out)
	ticks := make(chan time.Time)
	p.ticker = func(d time.Duration) (<-chan time.Time, func()) {
		if d != uploadEvery {
			t.Errorf("ticker every %s, want %s", d, uploadEvery)
		}
		return ticks, func() {}
	}
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }

	const total = 10 << 20
	u := p.uploadProgress(&out, "app.tar", total)
	r := u.reader(io.LimitReader(zeros{}, total))
	buf := make([]byte, 1<<20)
	for range 2 {
		now = now.Add(time.Second)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	}
	// The tick's line is written before stop returns.
	now = now.Add(2 * time.Second)
	ticks <- now
	u.stop()
	want := "app.tar: sent 1.0 MiB of 10.0 MiB (10%), 1.0 MiB/s\n" +
		"app.tar: sent 2.0 MiB of 10.0 MiB (20%), 1.0 MiB/s\n" +
		"app.tar: sent 2.0 MiB of 10.0 MiB (20%), 512.0 KiB/s\n"
	if got := out.String(); got != want {
		t.Errorf("progress =\n%s\nwant\n%s", got, want)
	}

	out = syncBuffer{}
	u = p.uploadProgress(&out, "app:dev", -1)
	r = u.reader(io.LimitReader(zeros{}, 3<<20))
	now = now.Add(2 * time.Second)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	ticks <- now
	u.stop()
	if got, want := out.String(), "app:dev: sent 3.0 MiB, 1.5 MiB/s\n"; got != want {
		t.Errorf("stream progress = %q, want %q", got, want)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestImageHelp(t *testing.T) {
	c := newCLI(t)
	out, _, err := c.run("image", "--help")
	if err != nil || !strings.Contains(out, "load   put images into a running cluster's node") {
		t.Errorf("smek image --help: %v, %q", err, out)
	}
	_, stderr, err := c.run("image", "load", "--help")
	if err != nil || !strings.Contains(stderr, "Usage: smek image load [flags] IMAGE-or-FILE...") || !strings.Contains(stderr, "-docker-host") {
		t.Errorf("smek image load --help: %v, %q", err, stderr)
	}
	if _, _, err := c.run("image", "push"); !errors.Is(err, errUsage) {
		t.Errorf("smek image push: err = %v, want a usage error", err)
	}
	if _, _, err := c.run("image"); !errors.Is(err, errUsage) {
		t.Errorf("smek image: err = %v, want a usage error", err)
	}
}
