package statuspage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
	"github.com/smek/action/internal/statuspage"
)

func newPage(src statuspage.Source) *statuspage.Page {
	return statuspage.New(src, statuspage.Options{Targets: targets, Clock: clockwork.NewFakeClockAt(now)})
}

func get(t *testing.T, h http.Handler) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

var cellRE = regexp.MustCompile(`<td[^>]*>(.*?)</td>`)
var tagRE = regexp.MustCompile(`<[^>]+>`)

// row returns the text of the cells of the first table row containing key.
func row(t *testing.T, html, key string) []string {
	t.Helper()
	for _, tr := range strings.Split(html, "<tr") {
		if !strings.Contains(tr, key) {
			continue
		}
		var cells []string
		for _, m := range cellRE.FindAllStringSubmatch(tr, -1) {
			cells = append(cells, tagRE.ReplaceAllString(m[1], ""))
		}
		return cells
	}
	t.Fatalf("no table row contains %q", key)
	return nil
}

func TestStatusPageFromSQLite(t *testing.T) {
	code, h, html := get(t, newPage(seed(t)))
	if code != http.StatusOK {
		t.Fatalf("got %d, want 200:\n%s", code, html)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("content type %q, want text/html; charset=utf-8", ct)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("content security policy %q, want default-src 'none'", csp)
	}

	t.Run("pool", func(t *testing.T) {
		tests := []struct {
			flavor string
			want   []string // flavor, target, ready, booting, rebuilding, in use, failed, health
		}{
			{"1.27.4/1-mid/baseline", []string{"1.27.4/1-mid/baseline", "3", "2", "1", "1", "2", "0", "low"}},
			{"1.27.4/1-mid/privileged", []string{"1.27.4/1-mid/privileged", "1", "0", "0", "0", "0", "1", "empty"}},
			{"1.28.0/1-mid/baseline", []string{"1.28.0/1-mid/baseline", "1", "0", "0", "0", "0", "0", "empty"}},
		}
		for _, tt := range tests {
			got := row(t, html, `data-flavor="`+tt.flavor+`"`)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("pool row %s: got %q, want %q", tt.flavor, got, tt.want)
			}
		}
	})

	t.Run("clusters", func(t *testing.T) {
		got := row(t, html, "c-run001")
		want := []string{"c-run001", "team-a", "running", "1.27.4/1-mid/baseline", "2026-03-01 11:40:00", "2026-03-01 12:40:00", "in 40m", "acme/shop #17"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("cluster row: got %q, want %q", got, want)
		}
		if got := row(t, html, "c-late03"); got[6] != "overdue 10m" {
			t.Errorf("overdue cluster: got left %q, want overdue 10m", got[6])
		}
		if got := row(t, html, "c-stp002"); got[2] != "stopped" || got[6] != "-" {
			t.Errorf("stopped cluster: got %q, want status stopped and no time left", got)
		}
		if strings.Contains(html, "c-gone04") {
			t.Error("a terminated cluster is listed among the live ones")
		}
	})

	t.Run("latency", func(t *testing.T) {
		for id, want := range map[string]string{
			"claim-count": "6", "claim-p50": "1.0 s", "claim-p95": "21.1 s",
		} {
			m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(html)
			if m == nil || m[1] != want {
				t.Errorf("%s: got %v, want %q", id, m, want)
			}
		}
		if n := strings.Count(html, "<circle "); n != 6 {
			t.Errorf("sparkline has %d dots, want one per claim (6)", n)
		}
		if !strings.Contains(html, `<polyline class="line" points="`) {
			t.Error("sparkline has no line")
		}
		if !strings.Contains(html, "(5 warm, 1 cold)") {
			t.Error("want the warm/cold split (5 warm, 1 cold)")
		}
	})

	t.Run("events", func(t *testing.T) {
		got := row(t, html, "c-stp002</code></td><td>expired")
		want := []string{"2026-03-01 11:58:00", "c-stp002", "expired", "running → stopped", "ttl", "sweeper", ""}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("event row: got %q, want %q", got, want)
		}
		if i, j := strings.Index(html, ">expired<"), strings.Index(html, ">released<"); i < 0 || j < 0 || i > j {
			t.Error("events are not newest first")
		}
	})

	t.Run("header", func(t *testing.T) {
		if !strings.Contains(html, `id="running-count">2<`) || !strings.Contains(html, `id="ready-count">2<`) {
			t.Error("want 2 running clusters and 2 ready pool members in the header")
		}
		if strings.Contains(html, "<script") {
			t.Error("the page has a script")
		}
	})
}

func TestStatusPageEmptyDatabase(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir()+"/smek.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code, _, html := get(t, statuspage.New(db, statuspage.Options{Clock: clockwork.NewFakeClockAt(now)}))
	if code != http.StatusOK {
		t.Fatalf("got %d, want 200", code)
	}
	for _, want := range []string{"No pool members", "No live clusters.", "No events recorded.", "No clusters were created in the last hour."} {
		if !strings.Contains(html, want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
}

// hostileSource returns data with markup in every free-text field.
type hostileSource struct{ err error }

func (s hostileSource) PoolHealth(context.Context) ([]sqlite.PoolHealth, error) { return nil, s.err }
func (s hostileSource) AllClusters(context.Context, bool) ([]cluster.Cluster, error) {
	return []cluster.Cluster{{ID: "c-xss001", Account: `<script>alert(1)</script>`, Status: cluster.Running,
		Run: cluster.RunMetadata{Repository: `"><img src=x onerror=alert(2)>`}}}, nil
}
func (s hostileSource) RecentEvents(context.Context, int) ([]cluster.Event, error) {
	return []cluster.Event{{Subject: "c-xss001", Type: "created", Message: `<iframe src="//evil">`}}, nil
}
func (s hostileSource) ClaimSamples(context.Context, time.Time) ([]sqlite.ClaimSample, error) {
	return nil, nil
}

func TestStatusPageEscapes(t *testing.T) {
	_, _, html := get(t, newPage(hostileSource{}))
	for _, bad := range []string{"<script>", "<img", "<iframe"} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Error("the account name is not shown escaped")
	}
}

func TestStatusPageDatabaseDown(t *testing.T) {
	code, _, body := get(t, newPage(hostileSource{err: errors.New("database is locked")}))
	if code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", code)
	}
	if strings.Contains(body, "locked") {
		t.Errorf("the page shows the internal error: %s", body)
	}
}

func TestStatusPageMethods(t *testing.T) {
	srv := httptest.NewServer(newPage(hostileSource{}))
	defer srv.Close()
	res, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: got %d allow %q, want 405 allow GET, HEAD", res.StatusCode, res.Header.Get("Allow"))
	}
}
