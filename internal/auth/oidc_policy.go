package auth

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// GitHubIssuer is the issuer of GitHub Actions OIDC tokens on github.com.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Events that run a base repository's workflow, with its privileges, on
// behalf of code from a fork. A policy admits them only by naming them.
var dangerousEvents = map[string]bool{
	"pull_request_target": true,
	"workflow_run":        true,
}

// Policy admits verified OIDC tokens to an account. A token matches when it
// comes from Issuer and RepositoryOwnerID, and every other non-zero field
// matches too. Ids are matched rather than names because owner and
// repository names can be given up and re-registered by someone else.
type Policy struct {
	ID int64
	// Account receives the clusters; stores fill in its id and limits.
	Account cluster.Account
	// Issuer is the token issuer the ids belong to (GitHubIssuer unless
	// another CI system is configured).
	Issuer string
	// RepositoryOwnerID is the GitHub owner (user or organization) id, or
	// the GitLab namespace id. Required.
	RepositoryOwnerID int64
	// RepositoryID narrows the policy to one repository (GitLab: project);
	// 0 admits every repository of the owner.
	RepositoryID int64
	// Ref is a glob over the full ref ("refs/heads/main"): path.Match
	// syntax, where * does not cross a slash, plus a trailing "/**" that
	// matches everything below. Empty admits every ref.
	Ref string
	// Environment admits only jobs that run in this deployment
	// environment; empty admits any job.
	Environment string
	// Event admits only this event (GitLab: pipeline source); empty admits
	// every event except pull_request_target and workflow_run.
	Event string
	// AllowPrivileged lets the admitted tokens create privileged clusters.
	AllowPrivileged bool
	CreatedAt       time.Time
}

// PolicyStore finds the policies that could admit a token.
type PolicyStore interface {
	// PoliciesForOwner returns the policies of issuer for this owner id,
	// with their accounts' current limits.
	PoliciesForOwner(ctx context.Context, issuer string, ownerID int64) ([]Policy, error)
}

// Validate checks a policy before it is stored; errors name the offending
// command-line flag.
func (p Policy) Validate() error {
	if strings.TrimSpace(p.Account.Name) == "" {
		return cluster.Errorf(cluster.EINVALID, "account", "account is required")
	}
	if err := validateIssuer(p.Issuer); err != nil {
		return cluster.Errorf(cluster.EINVALID, "issuer", "issuer %q is not valid: %v", p.Issuer, err)
	}
	if p.RepositoryOwnerID <= 0 {
		return cluster.Errorf(cluster.EINVALID, "repository-owner-id", "repository-owner-id is required and must be a positive number (the owner's numeric id, not its name)")
	}
	if p.RepositoryID < 0 {
		return cluster.Errorf(cluster.EINVALID, "repository-id", "repository-id must be a positive number")
	}
	if err := validateRefGlob(p.Ref); err != nil {
		return cluster.Errorf(cluster.EINVALID, "ref", "ref %q is not a valid glob: %v", p.Ref, err)
	}
	if err := validateWord(p.Environment, 255, ""); err != nil {
		return cluster.Errorf(cluster.EINVALID, "environment", "environment %q is not valid: %v", p.Environment, err)
	}
	if err := validateWord(p.Event, 64, "abcdefghijklmnopqrstuvwxyz0123456789_-"); err != nil {
		return cluster.Errorf(cluster.EINVALID, "event", "event %q is not valid: %v", p.Event, err)
	}
	return nil
}

func validateIssuer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("want an absolute https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("an issuer has no query or fragment")
	}
	return nil
}

// validateWord checks a free-form value: bounded, printable, and limited to
// allowed characters when allowed is not empty.
func validateWord(s string, max int, allowed string) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("contains a control character")
		}
		if allowed != "" && !strings.ContainsRune(allowed, r) {
			return fmt.Errorf("use lower-case letters, digits, '_' and '-'")
		}
	}
	return nil
}

// validateRefGlob checks a ref pattern the way matchRef uses it.
func validateRefGlob(pattern string) error {
	if len(pattern) > 255 {
		return fmt.Errorf("longer than 255 bytes")
	}
	if pattern == "" {
		return nil
	}
	p := strings.TrimSuffix(pattern, "/**")
	if strings.Contains(p, "**") {
		return fmt.Errorf("** is only allowed as the last path element, as in refs/heads/**")
	}
	if _, err := path.Match(p, ""); err != nil {
		return err
	}
	return nil
}

// matchRef reports whether ref matches pattern: path.Match, or, for a
// pattern ending in "/**", a ref with at least one more path element below
// a match of the rest.
func matchRef(pattern, ref string) bool {
	if pattern == "" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok {
		n := strings.Count(prefix, "/") + 1
		segs := strings.Split(ref, "/")
		if len(segs) <= n {
			return false
		}
		ok, err := path.Match(prefix, strings.Join(segs[:n], "/"))
		return err == nil && ok
	}
	ok, err := path.Match(pattern, ref)
	return err == nil && ok
}

// matches reports whether p admits the claims. Issuer and owner id are the
// store's lookup key and checked again here.
func (p Policy) matches(c Claims) bool {
	switch {
	case p.Issuer != c.Issuer, p.RepositoryOwnerID != c.RepositoryOwnerID:
		return false
	case p.RepositoryID != 0 && p.RepositoryID != c.RepositoryID:
		return false
	case p.Environment != "" && p.Environment != c.Environment:
		return false
	case p.Event != "" && p.Event != c.Event:
		return false
	case p.Event == "" && dangerousEvents[c.Event]:
		return false
	}
	return matchRef(p.Ref, c.Ref)
}

// specificity ranks a matching policy; MatchPolicy prefers the larger, in
// this order: a repository id over none, an environment over none, an exact
// ref over a glob over any ref, a longer literal ref prefix, an event over
// none.
func (p Policy) specificity() [5]int {
	var s [5]int
	if p.RepositoryID != 0 {
		s[0] = 1
	}
	if p.Environment != "" {
		s[1] = 1
	}
	switch i := strings.IndexAny(p.Ref, `*?[\`); {
	case p.Ref == "":
	case i < 0:
		s[2], s[3] = 2, len(p.Ref)
	default:
		s[2], s[3] = 1, i
	}
	if p.Event != "" {
		s[4] = 1
	}
	return s
}

func moreSpecific(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return false
}

// MatchPolicy returns the most specific of policies that admits the claims
// (on a tie, the oldest: the lowest id). When none does, the EFORBIDDEN
// error names the policy an operator would have to add.
func MatchPolicy(policies []Policy, c Claims) (Policy, error) {
	var best Policy
	var bestRank [5]int
	found := false
	for _, p := range policies {
		if !p.matches(c) {
			continue
		}
		r := p.specificity()
		if !found || moreSpecific(r, bestRank) || r == bestRank && p.ID < best.ID {
			best, bestRank, found = p, r, true
		}
	}
	if !found {
		return Policy{}, noPolicyError(c)
	}
	return best, nil
}

// noPolicyError explains which policy is missing and how to add it. The
// values come from a verified token, but are quoted and bounded anyway.
func noPolicyError(c Claims) error {
	var who strings.Builder
	fmt.Fprintf(&who, "repository_owner_id %d", c.RepositoryOwnerID)
	add := fmt.Sprintf("provisioner policy add --account NAME --repository-owner-id %d", c.RepositoryOwnerID)
	if c.RepositoryID != 0 {
		fmt.Fprintf(&who, " / repository_id %d", c.RepositoryID)
		add += fmt.Sprintf(" --repository-id %d", c.RepositoryID)
	}
	if c.Repository != "" {
		fmt.Fprintf(&who, " (%s)", bound(c.Repository))
	}
	fmt.Fprintf(&who, " on ref %s (event %s", bound(c.Ref), bound(c.Event))
	if c.Ref != "" {
		add += " --ref " + shellQuote(c.Ref)
	}
	if c.Environment != "" {
		fmt.Fprintf(&who, ", environment %s", bound(c.Environment))
	}
	who.WriteString(")")
	if c.Issuer != GitHubIssuer {
		add += " --oidc-issuer " + shellQuote(c.Issuer)
	}
	if dangerousEvents[c.Event] {
		add += " --event " + c.Event
		return cluster.Errorf(cluster.EFORBIDDEN, "",
			"no SMEK policy admits %s: event %s runs a workflow with the base repository's privileges for code from a fork, so only a policy that names the event admits it; an operator can add one with: %s",
			who.String(), c.Event, add)
	}
	return cluster.Errorf(cluster.EFORBIDDEN, "", "no SMEK policy admits %s; an operator can add one with: %s", who.String(), add)
}

// bound shortens a claim for a message.
func bound(s string) string {
	if s == "" {
		return `""`
	}
	const max = 100
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	if strings.ContainsAny(s, " \t\n\"'\\") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:") == "" {
		return s
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
