package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

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
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "Usage: provisioner pool status [--json] [flags]")
		if len(args) == 0 {
			return fmt.Errorf("%w: pool needs a subcommand (status)", errUsage)
		}
		return fmt.Errorf("%w: unknown pool subcommand %q (status)", errUsage, args[0])
	}
	fs := newFlagSet("pool status", "Show the warm pool per flavor: target, ready, booting, rebuilding, in use and failed members.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	poolSize := fs.Int("pool-size", 2, "target of ready members for each baseline flavor (as given to serve)")
	poolSizePriv := fs.Int("pool-size-privileged", 0, "target of ready members for each privileged flavor (as given to serve)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if *poolSize < 0 || *poolSizePriv < 0 {
		return fmt.Errorf("%w: --pool-size and --pool-size-privileged must not be negative", errUsage)
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
	rows := make([]poolStatus, 0, len(health))
	for _, h := range health {
		target := *poolSize
		if h.Flavor.Privileged {
			target = *poolSizePriv
		}
		rows = append(rows, poolStatus{
			Flavor: h.Flavor.String(), K8sVersion: h.Flavor.K8sVersion, ClusterSize: h.Flavor.Size,
			EnablePrivileged: h.Flavor.Privileged, Target: target, Ready: h.Ready, Booting: h.Booting,
			Rebuilding: h.Rebuilding, InUse: h.InUse, Failed: h.Failed, Other: h.Other,
		})
	}
	if *asJSON {
		return printJSON(stdout, struct {
			Pools []poolStatus `json:"pools"`
		}{rows})
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
