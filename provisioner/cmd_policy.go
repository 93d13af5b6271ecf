package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

func cmdPolicy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "policy", []subcommand{{"add", policyAdd}, {"list", policyList}, {"remove", policyRemove}}, args, getenv, stdout, stderr)
}

const policyAddSummary = `Admit CI OIDC tokens (GitHub Actions, GitLab CI id_tokens) to an account.
A token is admitted when it comes from --oidc-issuer and --repository-owner-id and
matches every other condition given. Ids, not names: find them with
'gh api repos/OWNER/REPO --jq .owner.id,.id' (GitLab: the namespace and project ids).
When several policies match, the most specific wins: a repository id over none,
then an environment over none, then an exact ref over a glob over none (a longer
literal prefix over a shorter), then an event over none; then the oldest.
pull_request_target and workflow_run are admitted only by a policy naming them.`

func policyAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy add", policyAddSummary, stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	account := fs.String("account", "", "account the admitted tokens act as, created if new (required)")
	issuer := fs.String("oidc-issuer", auth.GitHubIssuer, "issuer of the tokens, as given to 'serve --oidc-issuer'")
	owner := fs.Int64("repository-owner-id", 0, "numeric id of the repository owner (GitLab: namespace_id) (required)")
	repo := fs.Int64("repository-id", 0, "numeric id of one repository (GitLab: project_id); 0 for all of the owner's")
	ref := fs.String("ref", "", "glob over the full ref: refs/heads/main, refs/tags/v*, refs/heads/** (* stays within one path element)")
	env := fs.String("environment", "", "admit only jobs running in this deployment environment")
	event := fs.String("event", "", "admit only this event (GitLab: pipeline_source), e.g. push; required to admit pull_request_target or workflow_run")
	priv := fs.Bool("allow-privileged", false, "the admitted tokens may create privileged clusters")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	p := auth.Policy{
		Account: cluster.Account{Name: *account}, Issuer: *issuer, RepositoryOwnerID: *owner, RepositoryID: *repo,
		Ref: *ref, Environment: *env, Event: *event, AllowPrivileged: *priv,
	}
	// Check before creating the data folder, so that a typo leaves nothing
	// behind.
	if err := p.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if p, err = db.AddPolicy(ctx, p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added policy %d: %s\n", p.ID, describePolicy(p))
	return nil
}

// describePolicy says in one line what a policy admits.
func describePolicy(p auth.Policy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tokens of %s from owner %d", p.Issuer, p.RepositoryOwnerID)
	if p.RepositoryID != 0 {
		fmt.Fprintf(&b, ", repository %d", p.RepositoryID)
	}
	if p.Ref != "" {
		fmt.Fprintf(&b, ", ref %s", p.Ref)
	}
	if p.Environment != "" {
		fmt.Fprintf(&b, ", environment %q", p.Environment)
	}
	if p.Event != "" {
		fmt.Fprintf(&b, ", event %s", p.Event)
	}
	fmt.Fprintf(&b, " act as account %q", p.Account.Name)
	if p.AllowPrivileged {
		b.WriteString(" and may create privileged clusters")
	}
	return b.String()
}

// policyJSON is a policy in 'policy list --json'.
type policyJSON struct {
	ID                int64     `json:"id"`
	Account           string    `json:"account"`
	Issuer            string    `json:"issuer"`
	RepositoryOwnerID int64     `json:"repository-owner-id"`
	RepositoryID      int64     `json:"repository-id,omitempty"`
	Ref               string    `json:"ref,omitempty"`
	Environment       string    `json:"environment,omitempty"`
	Event             string    `json:"event,omitempty"`
	AllowPrivileged   bool      `json:"allow-privileged"`
	CreatedAt         time.Time `json:"created-at"`
}

func policyList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	orAny := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return listing[auth.Policy]{
		name: "policy list", usage: "List the OIDC policies.",
		read: (*sqlite.DB).Policies,
		asJSON: func(p auth.Policy) any {
			return policyJSON{
				ID: p.ID, Account: p.Account.Name, Issuer: p.Issuer, RepositoryOwnerID: p.RepositoryOwnerID,
				RepositoryID: p.RepositoryID, Ref: p.Ref, Environment: p.Environment, Event: p.Event,
				AllowPrivileged: p.AllowPrivileged, CreatedAt: p.CreatedAt,
			}
		},
		header: "ID\tACCOUNT\tOWNER-ID\tREPOSITORY-ID\tREF\tENVIRONMENT\tEVENT\tPRIVILEGED\tISSUER\tCREATED",
		cells: func(p auth.Policy) []any {
			repo := "*"
			if p.RepositoryID != 0 {
				repo = strconv.FormatInt(p.RepositoryID, 10)
			}
			return []any{p.ID, p.Account.Name, p.RepositoryOwnerID, repo, orAny(p.Ref), orAny(p.Environment), orAny(p.Event),
				p.AllowPrivileged, p.Issuer, p.CreatedAt.Format(time.RFC3339)}
		},
	}.run(ctx, args, getenv, stdout, stderr)
}

func policyRemove(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy remove ID", "Remove an OIDC policy by its id (from 'policy list'). Tokens it admitted stop working at once.", stderr)
	dataDir := fs.String("data-dir", defaultDataDir, "folder of the SMEK database")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: name one policy by its id", errUsage)
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil || id <= 0 {
		return cluster.Errorf(cluster.EINVALID, "id", "policy id %q is not a number (see 'provisioner policy list')", fs.Arg(0))
	}
	db, err := openDB(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.RemovePolicy(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed policy %d\n", id)
	return nil
}
