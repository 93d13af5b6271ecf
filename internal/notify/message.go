package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
	"time"

	"github.com/smek/action/internal/cluster"
)

//go:embed templates/*
var templateFS embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/*.txt.tmpl"))
	htmlTemplates = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/*.html.tmpl"))
)

// message is one composed mail.
type message struct {
	ClusterID string
	Kind      cluster.NotificationKind
	To        string
	Subject   string
	Text      string
	HTML      string
}

// mailData is what the templates see.
type mailData struct {
	Kind       string
	Headline   string
	ID         cluster.ID
	Account    string
	Status     cluster.Status
	K8sVersion string
	Size       string
	Privileged bool
	Keep       bool
	APIServer  string
	ExpiresAt  string
	ExpiresIn  string
	// ShowExpiry is false where the deadline no longer applies.
	ShowExpiry bool
	// AtDeadline says what happens at the deadline.
	AtDeadline string
	Run        string
	Actions    []action
}

// action is a curl line the recipient can run.
type action struct {
	What string
	Curl string
}

const timeLayout = "2006-01-02 15:04 MST"

// compose renders the mail for n. base is the API's public URL without a
// trailing slash.
func compose(n cluster.Notification, base string) (message, error) {
	c := n.Cluster
	d := mailData{
		Kind:       string(n.Kind),
		ID:         c.ID,
		Account:    c.Account,
		Status:     c.Status,
		K8sVersion: c.Spec.K8sVersion,
		Size:       c.Spec.Size,
		Privileged: c.Spec.Privileged,
		Keep:       c.Spec.KeepCluster,
		APIServer:  c.APIServer,
		ExpiresAt:  c.ExpiresAt.UTC().Format(timeLayout),
		ExpiresIn:  untilText(c.ExpiresAt.Sub(n.At)),
		AtDeadline: "it will be terminated and its data deleted",
	}
	if c.Spec.KeepCluster {
		d.AtDeadline = "it will be stopped; its data is kept and you can start it again"
	}
	if c.Run.Repository != "" && c.Run.RunID != 0 {
		d.Run = fmt.Sprintf("%s, run %d", c.Run.Repository, c.Run.RunID)
	}
	why := causeText(n.Cause)
	var subject string
	switch n.Kind {
	case cluster.NotifyStarted:
		subject = fmt.Sprintf("SMEK cluster %s is running (until %s)", c.ID, d.ExpiresAt)
		d.Headline = fmt.Sprintf("Your cluster %s is running.", c.ID)
		d.ShowExpiry = true
		d.Actions = []action{extendAction(base, c.ID), stopAction(base, c.ID, c.Spec.KeepCluster), terminateAction(base, c.ID)}
	case cluster.NotifyExpiring:
		subject = fmt.Sprintf("SMEK cluster %s expires %s", c.ID, d.ExpiresIn)
		d.Headline = fmt.Sprintf("Your cluster %s reaches its deadline %s: %s.", c.ID, d.ExpiresIn, d.AtDeadline)
		d.ShowExpiry = true
		d.Actions = []action{extendAction(base, c.ID), stopAction(base, c.ID, c.Spec.KeepCluster), terminateAction(base, c.ID)}
	case cluster.NotifyStopped:
		subject = fmt.Sprintf("SMEK cluster %s was stopped", c.ID)
		d.Headline = fmt.Sprintf("Your cluster %s was stopped %s. Its data is kept.", c.ID, why)
		if !c.StoppedExpiresAt.IsZero() {
			stoppedExpiry(&d, c, n.At)
		}
		d.Actions = []action{startAction(base, c.ID), terminateAction(base, c.ID)}
	case cluster.NotifyStoppedExpiring:
		stoppedExpiry(&d, c, n.At)
		subject = fmt.Sprintf("SMEK cluster %s will be terminated %s", c.ID, d.ExpiresIn)
		d.Headline = fmt.Sprintf("Your stopped cluster %s will be terminated %s and its data deleted: SMEK keeps a stopped cluster for a limited time. Start it to keep it; a start gives it a fresh lifetime.", c.ID, d.ExpiresIn)
		d.Actions = []action{startAction(base, c.ID), terminateAction(base, c.ID)}
	case cluster.NotifyTerminated:
		subject = fmt.Sprintf("SMEK cluster %s was terminated", c.ID)
		d.Headline = fmt.Sprintf("Your cluster %s was terminated %s. It is gone for good.", c.ID, why)
		if n.Reason != "" {
			d.Headline = fmt.Sprintf("Your cluster %s was terminated: %s. It is gone for good.", c.ID, n.Reason)
		}
	case cluster.NotifyFailed:
		subject = fmt.Sprintf("SMEK cluster %s was lost", c.ID)
		d.Headline = fmt.Sprintf("Your cluster %s stopped answering and is marked failed: %s. Its server is wiped and its data is gone; create a new cluster.", c.ID, n.Reason)
	default:
		return message{}, fmt.Errorf("compose mail: unknown notification kind %q", n.Kind)
	}
	var text, html bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&text, "mail.txt.tmpl", d); err != nil {
		return message{}, fmt.Errorf("compose mail: %w", err)
	}
	if err := htmlTemplates.ExecuteTemplate(&html, "mail.html.tmpl", d); err != nil {
		return message{}, fmt.Errorf("compose mail: %w", err)
	}
	return message{ClusterID: string(c.ID), Kind: n.Kind, To: c.Spec.NotificationEmail, Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

// stoppedExpiry shows the deadline of a stopped cluster in place of its
// running deadline.
func stoppedExpiry(d *mailData, c cluster.Cluster, at time.Time) {
	d.ExpiresAt = c.StoppedExpiresAt.UTC().Format(timeLayout)
	d.ExpiresIn = untilText(c.StoppedExpiresAt.Sub(at))
	d.AtDeadline = "it will be terminated and its data deleted"
	d.ShowExpiry = true
}

func causeText(cause string) string {
	switch cause {
	case "api":
		return "on request"
	case "ttl":
		return "because it reached its deadline"
	case "webhook":
		return "because its GitHub workflow run or pull request ended"
	case "reconciler":
		return "by SMEK's reconciler"
	case "":
		return ""
	default:
		return "(" + cause + ")"
	}
}

// untilText says how far away the deadline is, in whole minutes, or in
// whole days from two days on.
func untilText(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m <= 0:
		return "now"
	case m == 1:
		return "in 1 minute"
	case m < 120:
		return fmt.Sprintf("in %d minutes", m)
	case m < 48*60:
		return fmt.Sprintf("in %dh%02dm", m/60, m%60)
	default:
		return fmt.Sprintf("in %d days", (m+12*60)/(24*60))
	}
}

const curlAuth = `-H "Authorization: Bearer $TOKEN" -H 'content-type: application/json'`

func extendAction(base string, id cluster.ID) action {
	return action{"Give it 60 more minutes:",
		fmt.Sprintf(`curl -Ss -X POST %s/v1/clusters/%s/extend %s -d '{"minutes": 60}'`, base, id, curlAuth)}
}

func stopAction(base string, id cluster.ID, keep bool) action {
	what := "Stop it now (its data is kept):"
	if !keep {
		what = "End it now (created with keep-cluster false, so it is terminated):"
	}
	return action{what, fmt.Sprintf(`curl -Ss %s/stop %s -d '{"cluster-id": "%s"}'`, base, curlAuth, id)}
}

func terminateAction(base string, id cluster.ID) action {
	return action{"Terminate it now and delete its data:",
		fmt.Sprintf(`curl -Ss %s/stop %s -d '{"cluster-id": "%s", "force-terminate": true}'`, base, curlAuth, id)}
}

func startAction(base string, id cluster.ID) action {
	return action{"Start it again (prints a fresh kubeconfig):",
		fmt.Sprintf(`curl -Ss %s/start %s -d '{"cluster-id": "%s"}'`, base, curlAuth, id)}
}
