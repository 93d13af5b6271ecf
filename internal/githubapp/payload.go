package githubapp

import (
	"encoding/json"
	"time"

	"github.com/smek/action/internal/cluster"
)

// The parts of GitHub's webhook payloads the App reads. Field names are
// GitHub's; everything else in a payload is ignored.

type installationRef struct {
	ID int64 `json:"id"`
	// Account is the user or organization the App is installed on.
	Account *struct {
		Login string `json:"login"`
	} `json:"account"`
	// RepositorySelection is "all" (every repository of the account) or
	// "selected".
	RepositorySelection string `json:"repository_selection"`
}

type repositoryRef struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
}

type userRef struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// envelope is what every event has.
type envelope struct {
	Action       string           `json:"action"`
	Installation *installationRef `json:"installation"`
	Repository   *repositoryRef   `json:"repository"`
	Sender       *userRef         `json:"sender"`
}

func (e envelope) installationID() int64 {
	if e.Installation == nil {
		return 0
	}
	return e.Installation.ID
}

type workflowRunEvent struct {
	envelope
	WorkflowRun *struct {
		ID         int64 `json:"id"`
		RunAttempt int64 `json:"run_attempt"`
	} `json:"workflow_run"`
}

type workflowJobEvent struct {
	envelope
	WorkflowJob *struct {
		ID          int64      `json:"id"`
		Name        string     `json:"name"`
		RunID       int64      `json:"run_id"`
		RunAttempt  int64      `json:"run_attempt"`
		RunnerName  *string    `json:"runner_name"`
		StartedAt   *time.Time `json:"started_at"`
		CompletedAt *time.Time `json:"completed_at"`
		// WorkflowName is null in payloads of before 2022.
		WorkflowName *string `json:"workflow_name"`
	} `json:"workflow_job"`
}

type pullRequestEvent struct {
	envelope
	Number int64 `json:"number"`
}

type installationEvent struct {
	envelope
	// Repositories are those the installation could reach.
	Repositories []repositoryRef `json:"repositories"`
}

type installationRepositoriesEvent struct {
	envelope
	RepositoriesRemoved []repositoryRef `json:"repositories_removed"`
}

type issueCommentEvent struct {
	envelope
	Issue *struct {
		Number int `json:"number"`
		// State is "open" or "closed"; a merged pull request is closed.
		State       string          `json:"state"`
		PullRequest json.RawMessage `json:"pull_request"`
	} `json:"issue"`
	Comment *struct {
		ID                int64   `json:"id"`
		Body              string  `json:"body"`
		AuthorAssociation string  `json:"author_association"`
		User              userRef `json:"user"`
	} `json:"comment"`
}

// onPullRequest reports whether the commented issue is a pull request:
// GitHub sets issue.pull_request only then.
func (e issueCommentEvent) onPullRequest() bool {
	p := e.Issue.PullRequest
	return len(p) > 0 && string(p) != "null"
}

// closed returns "merged" or "closed" for a pull request that is no
// longer open, "" for an open one. The merge time is in
// issue.pull_request.merged_at.
func (e issueCommentEvent) closed() string {
	if e.Issue.State != "closed" {
		return ""
	}
	var pr struct {
		MergedAt *string `json:"merged_at"`
	}
	if json.Unmarshal(e.Issue.PullRequest, &pr) == nil && pr.MergedAt != nil && *pr.MergedAt != "" {
		return "merged"
	}
	return "closed"
}

// decode unmarshals a payload; a body that is not the expected JSON is
// EINVALID.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return cluster.Errorf(cluster.EINVALID, "body", "the payload is not a valid webhook JSON object: %v", err)
	}
	return nil
}

// missing is the error for a payload without a field the event needs.
func missing(field string) error {
	return cluster.Errorf(cluster.EINVALID, field, "the payload has no %s", field)
}
