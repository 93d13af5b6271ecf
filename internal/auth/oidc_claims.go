package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// Claims are the facts a verified CI token states about the job that holds
// it, in GitHub's terms. GitLab CI tokens are mapped onto the same fields
// (namespace_id → RepositoryOwnerID, project_id → RepositoryID, ...), so
// that one kind of policy serves both.
type Claims struct {
	Issuer            string
	Subject           string
	RepositoryOwnerID int64
	RepositoryID      int64
	Repository        string // "owner/repo"
	Ref               string // full ref: "refs/heads/main"
	SHA               string
	Environment       string
	Event             string // event_name (GitLab: pipeline_source)
	RunID             int64  // run_id (GitLab: pipeline_id)
	RunAttempt        int64
	Actor             string
	WorkflowRef       string
	Job               string // GitLab: job_id; GitHub tokens name no job
}

// RunMetadata returns the claims as a cluster's verified run metadata.
func (c Claims) RunMetadata() *cluster.RunMetadata {
	return &cluster.RunMetadata{
		Repository:   c.Repository,
		RepositoryID: c.RepositoryID,
		RunID:        c.RunID,
		RunAttempt:   c.RunAttempt,
		Job:          c.Job,
		Ref:          c.Ref,
		SHA:          c.SHA,
		Event:        c.Event,
		WorkflowRef:  c.WorkflowRef,
		Actor:        c.Actor,
		PullRequest:  pullRequestOf(c.Ref),
		Verified:     true,
	}
}

// pullRequestOf returns N for refs/pull/N/merge and refs/pull/N/head.
func pullRequestOf(ref string) int64 {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		return 0
	}
	num, tail, ok := strings.Cut(rest, "/")
	if !ok || (tail != "merge" && tail != "head") {
		return 0
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// tokenClaims is the JSON of a token's claims set: the registered claims
// SMEK checks itself and the CI claims of GitHub and GitLab.
type tokenClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  audience     `json:"aud"`
	Expiry    *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`

	// GitHub Actions. Numbers arrive as JSON strings.
	RepositoryOwnerID claim `json:"repository_owner_id"`
	RepositoryID      claim `json:"repository_id"`
	Repository        claim `json:"repository"`
	Ref               claim `json:"ref"`
	SHA               claim `json:"sha"`
	Environment       claim `json:"environment"`
	EventName         claim `json:"event_name"`
	RunID             claim `json:"run_id"`
	RunAttempt        claim `json:"run_attempt"`
	Actor             claim `json:"actor"`
	WorkflowRef       claim `json:"workflow_ref"`
	JobWorkflowRef    claim `json:"job_workflow_ref"`

	// GitLab CI id_tokens.
	NamespaceID    claim `json:"namespace_id"`
	ProjectID      claim `json:"project_id"`
	ProjectPath    claim `json:"project_path"`
	RefType        claim `json:"ref_type"`
	RefPath        claim `json:"ref_path"`
	PipelineID     claim `json:"pipeline_id"`
	PipelineSource claim `json:"pipeline_source"`
	JobID          claim `json:"job_id"`
	UserLogin      claim `json:"user_login"`
	CIConfigRefURI claim `json:"ci_config_ref_uri"`
}

// errNoOwner means a verified token carries no owner id to match policies on.
var errNoOwner = errors.New("no repository_owner_id or namespace_id claim")

// parseTokenClaims decodes a claims set.
func parseTokenClaims(payload []byte) (tokenClaims, error) {
	var tc tokenClaims
	if b := bytes.TrimLeft(payload, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return tc, errors.New("decode claims: not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(&tc); err != nil {
		return tc, fmt.Errorf("decode claims: %w", err)
	}
	if d.More() {
		return tc, errors.New("decode claims: trailing data")
	}
	return tc, nil
}

// claims maps the CI claims onto Claims, GitHub's or, when the token has
// GitLab's project_id instead, GitLab's.
func (tc tokenClaims) claims() (Claims, error) {
	c := Claims{Issuer: tc.Issuer, Subject: tc.Subject, SHA: string(tc.SHA), Environment: string(tc.Environment)}
	var err error
	if tc.RepositoryOwnerID == "" && tc.ProjectID != "" {
		return tc.gitLabClaims(c)
	}
	if tc.RepositoryOwnerID == "" {
		return c, errNoOwner
	}
	if c.RepositoryOwnerID, err = tc.RepositoryOwnerID.id("repository_owner_id"); err != nil {
		return c, err
	}
	if tc.RepositoryID != "" {
		if c.RepositoryID, err = tc.RepositoryID.id("repository_id"); err != nil {
			return c, err
		}
	}
	c.Repository = string(tc.Repository)
	c.Ref = string(tc.Ref)
	c.Event = string(tc.EventName)
	c.RunID = tc.RunID.number()
	c.RunAttempt = tc.RunAttempt.number()
	c.Actor = string(tc.Actor)
	c.WorkflowRef = string(tc.WorkflowRef)
	if c.WorkflowRef == "" {
		c.WorkflowRef = string(tc.JobWorkflowRef)
	}
	return c, nil
}

func (tc tokenClaims) gitLabClaims(c Claims) (Claims, error) {
	var err error
	if tc.NamespaceID == "" {
		return c, errNoOwner
	}
	if c.RepositoryOwnerID, err = tc.NamespaceID.id("namespace_id"); err != nil {
		return c, err
	}
	if c.RepositoryID, err = tc.ProjectID.id("project_id"); err != nil {
		return c, err
	}
	c.Repository = string(tc.ProjectPath)
	// Older GitLab versions have no ref_path: rebuild it from ref_type.
	c.Ref = string(tc.RefPath)
	if c.Ref == "" && tc.Ref != "" {
		switch tc.RefType {
		case "branch":
			c.Ref = "refs/heads/" + string(tc.Ref)
		case "tag":
			c.Ref = "refs/tags/" + string(tc.Ref)
		}
	}
	c.Event = string(tc.PipelineSource)
	c.RunID = tc.PipelineID.number()
	c.Job = string(tc.JobID)
	c.Actor = string(tc.UserLogin)
	c.WorkflowRef = string(tc.CIConfigRefURI)
	return c, nil
}

// claim is a claim value that issuers send as a JSON string or number
// (GitHub sends ids as strings: "repository_id": "74").
type claim string

func (s *claim) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = claim(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*s = claim(n.String())
	return nil
}

// id parses a required numeric id.
func (s claim) id(name string) (int64, error) {
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("claim %s is not a positive integer", name)
	}
	return n, nil
}

// number parses an informational number, 0 when it is not one.
func (s claim) number() int64 {
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// audience is the aud claim: one string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud: want a string or an array of strings")
	}
	*a = many
	return nil
}

func (a audience) contains(s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}

// numericDate is a JWT time: seconds since the epoch, possibly fractional.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a number of seconds")
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<40 {
		return errors.New("want a number of seconds")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}
