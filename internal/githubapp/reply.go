package githubapp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Replies are public comments: they show cluster ids, states and deadlines,
// and how to fetch a kubeconfig with one's own SMEK token. They never show
// a kubeconfig or any credential.

func (j *commentJob) create(ctx context.Context) (string, bool) {
	if j.closed != "" {
		// Its cleanup has run or is about to: a new cluster would live
		// out its TTL unused.
		return fmt.Sprintf("@%s this pull request is %s: `/smek create` makes clusters for open pull requests only.", j.user, j.closed), false
	}
	c := j.cmd
	keep := c.Keep
	in := cluster.CreateInput{
		KeepCluster: &keep,
		Run: &cluster.RunMetadata{
			Repository:     j.repoFullName,
			RepositoryID:   j.repoID,
			PullRequest:    int64(j.number),
			InstallationID: j.installation,
			Actor:          j.user,
			Event:          "issue_comment",
		},
	}
	if c.Minutes > 0 {
		in.MinutesToLive = &c.Minutes
	}
	if c.Privileged {
		in.Privileged = &c.Privileged
	}
	if c.Version != "" {
		in.K8sVersion = &c.Version
	}
	cl, err := j.app.clusters.Create(ctx, j.installation, in)
	if err != nil {
		return j.failed("create a cluster", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "@%s cluster `%s` is %s: Kubernetes %s", j.user, cl.ID, cl.Status, cl.Spec.K8sVersion)
	if cl.Spec.Privileged {
		b.WriteString(", privileged")
	}
	fmt.Fprintf(&b, ", expires %s.", formatTime(cl.ExpiresAt))
	if cl.Spec.KeepCluster {
		b.WriteString(" It is kept when this pull request closes.")
	} else {
		b.WriteString(" It is terminated when this pull request closes.")
	}
	b.WriteString("\n\n")
	b.WriteString(j.fetchHelp(cl))
	return b.String(), true
}

// fetchHelp tells how to get the kubeconfig with one's own token.
func (j *commentJob) fetchHelp(cl cluster.Cluster) string { return j.app.fetchHelp(cl) }

// fetchHelp tells how to get cl's kubeconfig with a token of its account:
// with the smek CLI, or with curl.
func (a *App) fetchHelp(cl cluster.Cluster) string {
	account := "linked to this App installation"
	if cl.Account != "" {
		account = "`" + cl.Account + "`"
	}
	base := strings.TrimRight(a.publicURL, "/")
	if base == "" {
		base = "$SMEK_URL"
	}
	return fmt.Sprintf("Fetch its kubeconfig with a token of the SMEK account %s (it is never posted here):\n\n"+
		"```sh\ncurl -fsS -H \"Authorization: Bearer $SMEK_TOKEN\" -H 'Accept: application/yaml' \\\n"+
		"  %s/v1/clusters/%s/kubeconfig > smek-%s.yaml && chmod 600 smek-%s.yaml\n```\n\n"+
		"or with the smek CLI: `SMEK_API_URL=%s smek kubeconfig %s --write smek-%s.yaml`.\n",
		account, base, cl.ID, cl.ID, cl.ID, base, cl.ID, cl.ID)
}

func (j *commentJob) list(ctx context.Context) (string, bool) {
	list, err := j.app.clusters.List(ctx, j.installation, cluster.Filter{RepositoryID: j.repoID, PullRequest: int64(j.number)})
	if err != nil {
		return j.failed("list clusters", err)
	}
	var b strings.Builder
	n := 0
	for _, cl := range list {
		if cl.Status == cluster.Terminated {
			continue
		}
		if n == 0 {
			b.WriteString("| cluster | status | Kubernetes | expires | kept |\n|---|---|---|---|---|\n")
		}
		n++
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", cl.ID, cl.Status, cl.Spec.K8sVersion,
			formatTime(cl.ExpiresAt), yesNo(cl.Spec.KeepCluster))
	}
	if n == 0 {
		return fmt.Sprintf("@%s this pull request has no clusters. Make one with `/smek create`.", j.user), true
	}
	return fmt.Sprintf("@%s this pull request's clusters:\n\n%s", j.user, b.String()), true
}

// changed is the reply to stop, start and extend.
func (j *commentJob) changed(cl cluster.Cluster, err error, what string) (string, bool) {
	if err != nil {
		return j.failed(what+" "+j.cmd.ClusterID, err)
	}
	reply := fmt.Sprintf("@%s cluster `%s` is %s", j.user, cl.ID, cl.Status)
	switch cl.Status {
	case cluster.Terminated, cluster.Terminating:
		if what == "stop" && !cl.Spec.KeepCluster {
			reply += " (it was made without `keep`, so stop ends it)"
		}
		return reply + ".", true
	}
	reply += ", expires " + formatTime(cl.ExpiresAt) + "."
	switch {
	case what == "start":
		reply += "\n\n" + j.fetchHelp(cl)
	case what == "extend" && cl.Status == cluster.Running:
		reply += " " + j.extendedKubeconfigs(cl)
	}
	return reply, true
}

// kubeconfigLifetime is how long a kubeconfig SMEK hands out is valid at
// least (kube.TenantTokenLifetime; a test keeps the two equal). The App
// does not link the Kubernetes client, so it keeps its own copy.
const kubeconfigLifetime = 7 * 24 * time.Hour

// extendedKubeconfigs says what an extend means for the kubeconfigs
// already handed out, which the App cannot reach (a CI job's file): each
// is valid for kubeconfigLifetime after it was fetched, and until the
// cluster ends, so those fetched since the new deadline minus that
// lifetime keep working until the new deadline.
func (j *commentJob) extendedKubeconfigs(cl cluster.Cluster) string {
	cutoff := cl.ExpiresAt.Add(-kubeconfigLifetime)
	if cl.CreatedAt.IsZero() || !cl.CreatedAt.Before(cutoff) {
		return "Kubeconfigs already handed out for it keep working until then."
	}
	return fmt.Sprintf("Kubeconfigs fetched since %s keep working until then; older ones expire sooner. %s",
		formatTime(cutoff), j.fetchHelp(cl))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
