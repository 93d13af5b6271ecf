package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
	"github.com/smek/action/internal/sqlite"
)

// poolStatus is one flavor in `pool status --json`.
type poolStatus struct {
	Flavor           string `json:"flavor"`
	K8sVersion       string `json:"k8s-version"`
	ClusterSize      string `json:"cluster-size"`
	EnablePrivileged bool   `json:"enable-privileged"`
	Target           int    `json:"target"`
	Ready            int    `json:"ready"`
	Booting          int    `json:"booting"`
	Rebuilding       int    `json:"rebuilding"`
	InUse            int    `json:"in-use"`
	Failed           int    `json:"failed"`
	Other            int    `json:"other,omitempty"`
	// Usage is the flavor's server hours and cost over the last 24 hours.
	Usage flavorUsage `json:"last-24h"`
}

// flavorUsage is a flavor's accounting over the window of `pool status`.
type flavorUsage struct {
	BusyHours       float64 `json:"busy-server-hours"`
	IdleHours       float64 `json:"idle-server-hours"`
	StoppedHours    float64 `json:"stopped-server-hours"`
	BuildingHours   float64 `json:"building-server-hours"`
	HibernatedHours float64 `json:"hibernated-server-hours"`
	SnapshotGBHours float64 `json:"snapshot-gb-hours"`
	// IdleOverhead is idle ÷ busy hours; nil when nothing was busy.
	IdleOverhead *float64 `json:"idle-overhead"`
	CostEUR      float64  `json:"cost-eur"`
	// CostByCategory is the cost split like the hours (busy, idle,
	// stopped, building, hibernated).
	CostByCategory map[cost.Category]float64 `json:"cost-eur-by-category"`
}

func newFlavorUsage(u cost.Usage, m cost.Model) flavorUsage {
	eur, total := m.Cost(u)
	out := flavorUsage{
		BusyHours: u.Hours[cost.Busy], IdleHours: u.Hours[cost.Idle], StoppedHours: u.Hours[cost.Stopped],
		BuildingHours: u.Hours[cost.Building], HibernatedHours: u.Hours[cost.Hibernated], SnapshotGBHours: u.SnapshotGBHours,
		CostEUR: total, CostByCategory: eur,
	}
	if r, ok := u.IdleOverhead(); ok {
		out.IdleOverhead = &r
	}
	return out
}

// statusWindow is how far back `pool status` accounts the pool's hours.
const statusWindow = 24 * time.Hour

func cmdPool(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, poolUsage)
		return fmt.Errorf("%w: pool needs a subcommand (status, simulate)", errUsage)
	}
	switch args[0] {
	case "status":
		return cmdPoolStatus(ctx, args[1:], getenv, stdout, stderr)
	case "simulate":
		return cmdPoolSimulate(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprintln(stderr, poolUsage)
	return fmt.Errorf("%w: unknown pool subcommand %q (status, simulate)", errUsage, args[0])
}

const poolUsage = `Usage:
  provisioner pool status [--json] [--data-dir DIR] [--price TYPE=EUR_PER_HOUR]... [--snapshot-price EUR_PER_GB_MONTH]
  provisioner pool simulate --trace FILE [--policy fixed:N|fixed:N+prewarm|auto|auto+prewarm|clairvoyant]... [--json]
      [--seed N] [--create-time DIST] [--rebuild-time DIST] [--pool-min N] [--pool-max N]
      [--pool-schedule min=N,cron=EXPR,for=D]... [--price TYPE=EUR_PER_HOUR]...`

func cmdPoolStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return poolStatusAt(ctx, args, getenv, stdout, stderr, clockwork.NewRealClock())
}

// poolStatusAt is `pool status` on clock, whose now ends the window of
// the pool's hours and cost.
func poolStatusAt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, clock clockwork.Clock) error {
	fs := newFlagSet("pool status", "Show the warm pool per flavor: the targets the server works towards (recorded at its start and at each change of an auto policy), ready, booting, rebuilding, in use and failed members, and the last 24 hours' server hours (busy, idle, stopped, building, hibernated), idle overhead (idle ÷ busy) and cost in euros, at the prices the server recorded unless --price or --snapshot-price say otherwise.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	prices := addCostFlags(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	db, err := openExistingDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	health, err := db.PoolHealth(ctx)
	if err != nil {
		return err
	}
	// The targets are those the server recorded when it started
	// (`serve --pool-size`...), not defaults of this command.
	recorded, targetsOK, err := db.RecordedPoolTargets(ctx)
	if err != nil {
		return err
	}
	// The prices are those the server's metrics use, when it recorded
	// them, else the built-in list; the command's own flags win.
	model, source := cost.Default(), "built-in list prices"
	rec, ok, err := db.RecordedCostModel(ctx)
	if err != nil {
		return err
	}
	if ok {
		model, source = rec.Model, rec.Source
	}
	if len(prices.prices) > 0 || prices.snapshot.set {
		model, source = prices.model(model), source+" + --price"
	}
	to := clock.Now()
	from := to.Add(-statusWindow)
	usage, err := db.PoolUsage(ctx, from, to)
	if err != nil {
		return err
	}
	byFlavor := map[cluster.Flavor]sqlite.PoolHealth{}
	for _, h := range health {
		byFlavor[h.Flavor] = h
	}
	for f := range recorded.Targets {
		if _, seen := byFlavor[f]; !seen {
			byFlavor[f] = sqlite.PoolHealth{Flavor: f}
		}
	}
	usageOf := map[cluster.Flavor]cost.Usage{}
	for _, u := range usage {
		usageOf[u.Flavor] = u
		if _, seen := byFlavor[u.Flavor]; !seen {
			byFlavor[u.Flavor] = sqlite.PoolHealth{Flavor: u.Flavor} // all deleted, but paid for in the window
		}
	}
	rows := make([]poolStatus, 0, len(byFlavor))
	for f, h := range byFlavor {
		u, ok := usageOf[f]
		if !ok {
			u = cost.Usage{Flavor: f}
		}
		rows = append(rows, poolStatus{
			Flavor: f.String(), K8sVersion: f.K8sVersion, ClusterSize: f.Size,
			EnablePrivileged: f.Privileged, Target: recorded.Targets[f], Ready: h.Ready, Booting: h.Booting,
			Rebuilding: h.Rebuilding, InUse: h.InUse, Failed: h.Failed, Other: h.Other,
			Usage: newFlavorUsage(u, model),
		})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Flavor < rows[j].Flavor })
	if *asJSON {
		out := struct {
			TargetsRecorded bool         `json:"targets-recorded"`
			Backend         string       `json:"backend,omitempty"`
			RecordedAt      *time.Time   `json:"targets-recorded-at,omitempty"`
			From            time.Time    `json:"usage-from"`
			To              time.Time    `json:"usage-to"`
			Prices          string       `json:"prices"`
			Pools           []poolStatus `json:"pools"`
		}{TargetsRecorded: targetsOK, Backend: recorded.Backend, From: from.UTC(), To: to.UTC(), Prices: source, Pools: rows}
		if targetsOK {
			out.RecordedAt = &recorded.RecordedAt
		}
		return printJSON(stdout, out)
	}
	if targetsOK {
		fmt.Fprintf(stdout, "Targets of the %s server, recorded %s (at its start and at each change).\n", recorded.Backend, recorded.RecordedAt.Format("2006-01-02 15:04:05 MST"))
	} else {
		fmt.Fprintln(stdout, "No SMEK server has run on this database yet: no pool targets are recorded.")
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "The pool has no members yet.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAVOR\tTARGET\tREADY\tBOOTING\tREBUILDING\tIN USE\tFAILED\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Flavor, r.Target, r.Ready, r.Booting, r.Rebuilding, r.InUse, r.Failed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nServer hours and cost of the last 24 hours (%s, euros without VAT at %s):\n",
		from.UTC().Format("2006-01-02 15:04")+" to "+to.UTC().Format("15:04 MST"), source)
	fmt.Fprintln(tw, "FLAVOR\tBUSY H\tIDLE H\tSTOPPED H\tBUILDING H\tHIBERNATED H\tIDLE/BUSY\tEUR\t")
	var total float64
	for _, r := range rows {
		u := r.Usage
		overhead := "-"
		if u.IdleOverhead != nil {
			overhead = fmt.Sprintf("%.2f", *u.IdleOverhead)
		}
		total += u.CostEUR
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t\n", r.Flavor, u.BusyHours, u.IdleHours,
			u.StoppedHours, u.BuildingHours, u.HibernatedHours, overhead, u.CostEUR)
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t\t\t\t%.2f\t\n", total)
	return tw.Flush()
}

// openExistingDB opens the database in dataDir for an operator command that
// only reads: a missing database is an error, not a new empty one.
func openExistingDB(ctx context.Context, dataDir string) (*sqlite.DB, error) {
	path := filepath.Join(dataDir, "smek.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no SMEK database at %s (set --data-dir or SMEK_DATA_DIR to the server's data folder)", errUsage, path)
	}
	return openDB(ctx, dataDir)
}
