package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/wire"
)

func cmdCluster(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprintln(stderr, "Usage: provisioner cluster list [--all] [--json] [flags]")
		if len(args) == 0 {
			return fmt.Errorf("%w: cluster needs a subcommand (list)", errUsage)
		}
		return fmt.Errorf("%w: unknown cluster subcommand %q (list)", errUsage, args[0])
	}
	return clusterList(ctx, args[1:], getenv, stdout, stderr, clockwork.NewRealClock())
}

// clusterList prints the clusters of every account; clock is the clock of
// the "left" column.
func clusterList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, clock clockwork.Clock) error {
	fs := newFlagSet("cluster list", "List the clusters of every account, newest first: the live ones, or with --all also terminated and failed ones.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	all := fs.Bool("all", false, "include terminated and failed clusters")
	asJSON := fs.Bool("json", false, "print JSON (the /v1 API's cluster shape) instead of a table")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	db, err := openExistingDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	clusters, err := db.AllClusters(ctx, *all)
	if err != nil {
		return err
	}
	if *asJSON {
		out := wire.ClusterList{Clusters: make([]wire.Cluster, 0, len(clusters))}
		for _, c := range clusters {
			out.Clusters = append(out.Clusters, listedCluster(c))
		}
		return printJSON(stdout, out)
	}
	if len(clusters) == 0 {
		if *all {
			fmt.Fprintln(stdout, "No clusters.")
		} else {
			fmt.Fprintln(stdout, "No live clusters (--all shows ended ones too).")
		}
		return nil
	}
	t := clock.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tACCOUNT\tSTATUS\tFLAVOR\tCREATED (UTC)\tEXPIRES (UTC)\tLEFT\tCI RUN\t")
	for _, c := range clusters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.ID, c.Account, c.Status, c.Spec.Flavor(),
			c.CreatedAt.UTC().Format(time.DateTime), c.ExpiresAt.UTC().Format(time.DateTime), timeLeft(c, t), runText(c.Run))
	}
	return tw.Flush()
}

// timeLeft says how long a cluster has until its deadline; only running
// and pending clusters have one that matters.
func timeLeft(c cluster.Cluster, now time.Time) string {
	if c.Status != cluster.Running && c.Status != cluster.Pending {
		return "-"
	}
	d := c.ExpiresAt.Sub(now).Round(time.Minute)
	if d < 0 {
		return "overdue " + minutesText(-d)
	}
	return minutesText(d)
}

// minutesText shows d as "40m" or "3h05m".
func minutesText(d time.Duration) string {
	m := int(d / time.Minute)
	if m < 60 {
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

func runText(r cluster.RunMetadata) string {
	switch {
	case r.Repository == "":
		return "-"
	case r.PullRequest != 0:
		return fmt.Sprintf("%s#%d", r.Repository, r.PullRequest)
	case r.RunID != 0:
		return fmt.Sprintf("%s run %d", r.Repository, r.RunID)
	}
	return r.Repository
}

// listedCluster is c in the /v1 API's shape, without credentials.
func listedCluster(c cluster.Cluster) wire.Cluster {
	w := wire.Cluster{
		ClusterID: string(c.ID), ClusterStatus: string(c.Status), Account: c.Account,
		K8sVersion: c.Spec.K8sVersion, ClusterSize: c.Spec.Size, MinutesToLive: c.Spec.MinutesToLive,
		KeepCluster: c.Spec.KeepCluster, EnablePrivileged: c.Spec.Privileged, NotificationEmail: c.Spec.NotificationEmail,
		APIServer: c.APIServer, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
	}
	if !c.StoppedAt.IsZero() {
		w.StoppedAt = &c.StoppedAt
	}
	if !c.TerminatedAt.IsZero() {
		w.TerminatedAt = &c.TerminatedAt
	}
	if r := c.Run; r.Repository != "" || r.RunID != 0 {
		w.Run = &wire.RunMetadata{Repository: r.Repository, RunID: r.RunID, RunAttempt: r.RunAttempt,
			PullRequest: r.PullRequest, Verified: r.Verified}
	}
	if t := c.Timings; t.Total() > 0 || t.Warm {
		w.Timings = &wire.Timings{QueuedMS: t.Queued.Milliseconds(), ClaimedMS: t.Claimed.Milliseconds(),
			ReadyMS: t.Ready.Milliseconds(), TotalMS: t.Total().Milliseconds(), Warm: t.Warm}
	}
	return w
}
