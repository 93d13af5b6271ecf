package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/server"
)

// maxPrewarmTTL bounds --prewarm-ttl: GitHub cancels a job queued for
// 24 hours, and a pre-warm holds a paid server for its whole TTL.
const maxPrewarmTTL = 24 * time.Hour

// maxPrewarmCap bounds --prewarm-cap.
const maxPrewarmCap = 1000

// prewarmFlags are the flags of pre-warming from queued workflow jobs
// (the embedded GitHub App).
type prewarmFlags struct {
	on  bool
	ttl time.Duration
	cap int
}

func (p *prewarmFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.on, "github-prewarm", true, "with --github-webhook-secret: pre-warm a cluster when a workflow job that made one before is queued")
	fs.DurationVar(&p.ttl, "prewarm-ttl", githubapp.DefaultPrewarmTTL, "how long a pre-warm waits for its job's create before it is released")
	fs.IntVar(&p.cap, "prewarm-cap", githubapp.DefaultPrewarmCap, "bound on the pre-warms one GitHub App installation holds at once (its account's max-clusters bounds them too)")
}

// apply validates the flags and sets them in cfg; call it after
// --github-webhook-secret is parsed.
func (p *prewarmFlags) apply(fs *flag.FlagSet, cfg *server.Config) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case p.ttl <= 0 || p.ttl > maxPrewarmTTL:
		return fmt.Errorf("%w: --prewarm-ttl must be more than 0 and at most %s, e.g. 15m, got %s", errUsage, maxPrewarmTTL, p.ttl)
	case p.cap < 1 || p.cap > maxPrewarmCap:
		return fmt.Errorf("%w: --prewarm-cap must be 1 to %d (turn pre-warming off with --github-prewarm=false), got %d", errUsage, maxPrewarmCap, p.cap)
	case p.on && set["github-prewarm"] && cfg.GitHubWebhookSecret == "":
		return fmt.Errorf("%w: --github-prewarm needs the GitHub App: set --github-webhook-secret", errUsage)
	}
	cfg.GitHubPrewarm = p.on && cfg.GitHubWebhookSecret != ""
	cfg.PrewarmTTL, cfg.PrewarmCap = p.ttl, p.cap
	return nil
}
