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

	"github.com/smek/action/internal/cluster"
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
}

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
  provisioner pool status [--json] [--data-dir DIR]
  provisioner pool simulate --trace FILE [--policy fixed:N|fixed:N+prewarm|auto|auto+prewarm]... [--json]
      [--seed N] [--create-time DIST] [--rebuild-time DIST] [--pool-min N] [--pool-max N]
      [--pool-schedule min=N,cron=EXPR,for=D]... [--price TYPE=EUR,...]`

func cmdPoolStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pool status", "Show the warm pool per flavor: the targets the server was started with, ready, booting, rebuilding, in use and failed members.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
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
	recorded, ok, err := db.RecordedPoolTargets(ctx)
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
	rows := make([]poolStatus, 0, len(byFlavor))
	for f, h := range byFlavor {
		rows = append(rows, poolStatus{
			Flavor: f.String(), K8sVersion: f.K8sVersion, ClusterSize: f.Size,
			EnablePrivileged: f.Privileged, Target: recorded.Targets[f], Ready: h.Ready, Booting: h.Booting,
			Rebuilding: h.Rebuilding, InUse: h.InUse, Failed: h.Failed, Other: h.Other,
		})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Flavor < rows[j].Flavor })
	if *asJSON {
		out := struct {
			TargetsRecorded bool         `json:"targets-recorded"`
			Backend         string       `json:"backend,omitempty"`
			RecordedAt      *time.Time   `json:"targets-recorded-at,omitempty"`
			Pools           []poolStatus `json:"pools"`
		}{TargetsRecorded: ok, Backend: recorded.Backend, Pools: rows}
		if ok {
			out.RecordedAt = &recorded.RecordedAt
		}
		return printJSON(stdout, out)
	}
	if ok {
		fmt.Fprintf(stdout, "Targets of the %s server started %s.\n", recorded.Backend, recorded.RecordedAt.Format("2006-01-02 15:04:05 MST"))
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
