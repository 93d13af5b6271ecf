package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/smek/action/internal/client"
)

// releaseHelp explains `smek release`, the post step of other CIs.
const releaseHelp = "End a CI job's cluster, as the action's post step does: terminate it, or, when the job\n" +
	"failed (--status: a job status or the job's exit status) and --keep-on-failure is set, keep it\n" +
	"for debugging for that long and print how to reach it. A keep-cluster cluster is left alone.\n" +
	"GitLab CI: in after_script, --status \"$CI_JOB_STATUS\"."

func releaseFlags(fs *flag.FlagSet) func(context.Context, *program, *client.Client, string) error {
	keep := fs.String("keep-on-failure", "", "when the job failed, keep the cluster this `long` (like 30m) instead of terminating it")
	status := fs.String("status", "", "the job's `status`: success, failure/failed, cancelled/canceled, or an exit status (0 = success)")
	return func(ctx context.Context, p *program, c *client.Client, id string) error {
		keepFor, err := parseKeepFor("--keep-on-failure", *keep)
		if err != nil {
			return usagef("%w", err)
		}
		failed := false
		if *status != "" {
			if failed, err = jobFailed("--status", *status); err != nil {
				return usagef("%w", err)
			}
		} else if keepFor > 0 {
			return usagef("--keep-on-failure needs --status, the job's status or exit status")
		}
		cl, err := c.Get(ctx, id)
		switch {
		case client.IsNotFound(err):
			fmt.Fprintf(p.stdout, "Cluster %s is already gone.\n", id)
			return nil
		case err != nil:
			return explain(err, c.BaseURL(), 0)
		case cl.ClusterStatus == "terminated" || cl.ClusterStatus == "terminating":
			fmt.Fprintf(p.stdout, "Cluster %s is already gone.\n", id)
			return nil
		case cl.KeepCluster:
			fmt.Fprintf(p.stdout, "Keeping cluster %s (keep-cluster: true); it ends at its expiry, or with `smek terminate %s`.\n", id, id)
			return nil
		}
		if failed && keepFor > 0 {
			kept, err := c.Keep(ctx, id, int(keepFor/time.Minute), keepReason(p.getenv("CI_JOB_NAME")))
			if err == nil {
				fmt.Fprintf(p.stdout, "The job failed: keeping cluster %s for debugging until %s.\n", id, kept.ExpiresAt.UTC().Format(time.RFC3339))
				fmt.Fprintf(p.stdout, "Reach it with your own token: smek kubeconfig %s --write smek-%s.yaml\n", id, id)
				fmt.Fprintf(p.stdout, "More time: smek extend %s --minutes 30. Done early: smek terminate %s\n", id, id)
				return nil
			}
			if !client.IsConflict(err) {
				return explain(err, c.BaseURL(), 0)
			}
			fmt.Fprintf(p.stderr, "smek: cannot keep cluster %s: %s; terminating it\n", id, explain(err, c.BaseURL(), 0))
		}
		if _, err := c.Terminate(ctx, id); err != nil {
			if client.IsNotFound(err) || client.IsConflict(err) {
				fmt.Fprintf(p.stdout, "Cluster %s is already gone.\n", id)
				return nil
			}
			return explain(err, c.BaseURL(), 0)
		}
		fmt.Fprintf(p.stdout, "Terminated cluster %s.\n", id)
		return nil
	}
}
