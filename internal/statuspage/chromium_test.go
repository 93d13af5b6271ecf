package statuspage_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	shotWidth  = 1280
	shotHeight = 900
)

// chromium finds Debian's chromium, or skips the test; with
// SMEK_REQUIRE_CHROMIUM=1 (as in CI) a missing browser fails it instead.
func chromium(t *testing.T) string {
	t.Helper()
	name := os.Getenv("SMEK_CHROMIUM")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SMEK_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("SMEK_REQUIRE_CHROMIUM=1 but %s is not installed (run .ci/statuspage-deps.sh): %v", name, err)
		}
		t.Skipf("%s is not installed (apt-get install chromium); set SMEK_REQUIRE_CHROMIUM=1 to fail instead", name)
	}
	return path
}

// runChromium runs headless chromium on url with the extra flags and
// returns its standard output.
func runChromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(),
		"--window-size=1280,900",
	}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestStatusPageInChromium renders the page from a real database in
// headless Chromium: the screenshot must be a PNG of the window's size that
// is not blank, and the DOM must show the pool table and a cluster.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	srv := httptest.NewServer(newPage(seed(t)))
	defer srv.Close()
	url := srv.URL + "/"

	dom := string(runChromium(t, bin, url, "--dump-dom"))
	for _, want := range []string{`id="pool-table"`, "1.27.4/1-mid/baseline", "c-run001", "team-a", `id="sparkline"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q:\n%.2000s", want, dom)
		}
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	if dir := os.Getenv("SMEK_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "statuspage.png")
	}
	runChromium(t, bin, url, "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != shotWidth || b.Dy() != shotHeight {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), shotWidth, shotHeight)
	}
	if n := colors(img, 64); n < 8 {
		t.Errorf("the screenshot has %d colours: it looks blank", n)
	}
	if dark := darkShare(img, image.Rect(0, 0, shotWidth, 40)); dark < 0.5 {
		t.Errorf("only %.0f%% of the top band is dark: the page header did not render", dark*100)
	}
}

// colors counts the distinct colours of img, stopping at limit.
func colors(img image.Image, limit int) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// darkShare is the share of pixels in r darker than mid-grey.
func darkShare(img image.Image, r image.Rectangle) float64 {
	var dark, all int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if (cr+cg+cb)/3 < 0x8000 {
				dark++
			}
			all++
		}
	}
	return float64(dark) / float64(all)
}
