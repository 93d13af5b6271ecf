// Package statuspage renders the operator's page at "/": pool health per
// flavor, live clusters with owner and deadline, recent events, and claim
// latency over the last hour. It is server-rendered HTML (html/template,
// embedded) without JavaScript; the page reloads itself every 30 seconds.
package statuspage

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/logkey"
	"github.com/smek/action/internal/sqlite"
)

// Source is what the page reads. *sqlite.DB implements it.
type Source interface {
	PoolHealth(ctx context.Context) ([]sqlite.PoolHealth, error)
	AllClusters(ctx context.Context, includeEnded bool) ([]cluster.Cluster, error)
	RecentEvents(ctx context.Context, limit int) ([]cluster.Event, error)
	ClaimSamples(ctx context.Context, since time.Time) ([]sqlite.ClaimSample, error)
}

var _ Source = (*sqlite.DB)(nil)

// Options configure a Page.
type Options struct {
	// Targets is the configured pool size per flavor; flavors listed here
	// show even when they have no members yet.
	Targets map[cluster.Flavor]int
	// Clock is the page's time; nil means the wall clock.
	Clock  clockwork.Clock
	Logger *slog.Logger
	// Events is how many recent events to show (default 25).
	Events int
}

// Page is the status page handler.
type Page struct {
	src     Source
	targets map[cluster.Flavor]int
	clock   clockwork.Clock
	logger  *slog.Logger
	events  int
}

//go:embed templates/*.tmpl
var templateFS embed.FS

var pageTemplate = template.Must(template.New("status.html.tmpl").Funcs(template.FuncMap{
	"ms":   formatMS,
	"when": formatTime,
}).ParseFS(templateFS, "templates/status.html.tmpl"))

// New returns the status page over src.
func New(src Source, opts Options) *Page {
	p := &Page{src: src, targets: opts.Targets, clock: opts.Clock, logger: opts.Logger, events: opts.Events}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.events <= 0 {
		p.events = 25
	}
	return p
}

// ServeHTTP renders the page for GET and HEAD.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// No script runs on this page; inline styles and the inline SVG only.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")

	data, err := p.load(r.Context())
	if err != nil {
		p.logger.Error("status page: read the database", logkey.Err, err)
		http.Error(w, "the status page cannot read the database right now", http.StatusServiceUnavailable)
		return
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		p.logger.Error("status page: render", logkey.Err, err)
		http.Error(w, "the status page could not be rendered", http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// load reads everything the page shows.
func (p *Page) load(ctx context.Context) (pageData, error) {
	now := p.clock.Now().UTC()
	d := pageData{Now: now}
	health, err := p.src.PoolHealth(ctx)
	if err != nil {
		return d, err
	}
	d.Pools = poolRows(health, p.targets)
	clusters, err := p.src.AllClusters(ctx, false)
	if err != nil {
		return d, err
	}
	for _, c := range clusters {
		d.Clusters = append(d.Clusters, newClusterRow(c, now))
		if c.Status == cluster.Running {
			d.Running++
		}
	}
	if d.Events, err = p.src.RecentEvents(ctx, p.events); err != nil {
		return d, err
	}
	samples, err := p.src.ClaimSamples(ctx, now.Add(-time.Hour))
	if err != nil {
		return d, err
	}
	d.Claims = summarize(samples, now)
	for _, row := range d.Pools {
		d.Ready += row.Ready
	}
	return d, nil
}

// pageData is what the template sees.
type pageData struct {
	Now      time.Time
	Running  int
	Ready    int
	Pools    []poolRow
	Clusters []clusterRow
	Events   []cluster.Event
	Claims   claimSummary
}

// poolRow is one flavor's line in the pool table.
type poolRow struct {
	Flavor string
	Target int
	sqlite.PoolHealth
	// Health is "ok" (ready reaches the target), "low" (some ready) or
	// "empty" (none ready while some are wanted).
	Health string
}

func poolRows(health []sqlite.PoolHealth, targets map[cluster.Flavor]int) []poolRow {
	seen := map[cluster.Flavor]bool{}
	var rows []poolRow
	for _, h := range health {
		seen[h.Flavor] = true
		rows = append(rows, poolRow{Flavor: h.Flavor.String(), Target: targets[h.Flavor], PoolHealth: h})
	}
	for f, target := range targets {
		if !seen[f] {
			rows = append(rows, poolRow{Flavor: f.String(), Target: target, PoolHealth: sqlite.PoolHealth{Flavor: f}})
		}
	}
	for i := range rows {
		switch r := &rows[i]; {
		case r.Ready >= r.Target:
			r.Health = "ok"
		case r.Ready > 0:
			r.Health = "low"
		default:
			r.Health = "empty"
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Flavor < rows[j].Flavor })
	return rows
}

// clusterRow is one live cluster in the clusters table.
type clusterRow struct {
	ID        cluster.ID
	Account   string
	Status    cluster.Status
	Flavor    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// ExpiresIn is the time left until the deadline, negative when
	// overdue.
	ExpiresIn time.Duration
	Run       string
}

func newClusterRow(c cluster.Cluster, now time.Time) clusterRow {
	r := clusterRow{
		ID: c.ID, Account: c.Account, Status: c.Status, Flavor: c.Spec.Flavor().String(),
		CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, ExpiresIn: c.ExpiresAt.Sub(now),
	}
	if c.Run.Repository != "" {
		r.Run = c.Run.Repository
		if c.Run.PullRequest != 0 {
			r.Run += " #" + itoa(c.Run.PullRequest)
		}
	}
	return r
}

// Overdue is true for a cluster that should have been stopped or
// terminated already.
func (r clusterRow) Overdue() bool {
	return r.ExpiresIn < 0 && (r.Status == cluster.Running || r.Status == cluster.Pending)
}

// Left formats the time to the deadline; a stopped cluster waits without
// one.
func (r clusterRow) Left() string {
	if r.Status == cluster.Stopped {
		return "-"
	}
	d := r.ExpiresIn.Round(time.Minute)
	if d < 0 {
		return "overdue " + shortDuration(-d)
	}
	return "in " + shortDuration(d)
}
