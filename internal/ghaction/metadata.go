package ghaction

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/smek/action/internal/wire"
)

// RunMetadata collects the run's identity from the runner's GITHUB_*
// variables and, for pull-request events, the PR number from the event
// payload (the file at GITHUB_EVENT_PATH; nil when absent). Values it cannot
// read are left out and reported as warnings: metadata helps cleanup, it
// must not fail a job.
func RunMetadata(getenv func(string) string, event []byte) (wire.RunMetadata, []string) {
	var warnings []string
	num := func(name string) int64 {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			warnings = append(warnings, fmt.Sprintf("%s=%q is not a number; left out of the run metadata", name, v))
			return 0
		}
		return n
	}
	md := wire.RunMetadata{
		Repository:   getenv("GITHUB_REPOSITORY"),
		RepositoryID: num("GITHUB_REPOSITORY_ID"),
		RunID:        num("GITHUB_RUN_ID"),
		RunAttempt:   num("GITHUB_RUN_ATTEMPT"),
		Job:          getenv("GITHUB_JOB"),
		RunnerName:   getenv("RUNNER_NAME"),
		Ref:          getenv("GITHUB_REF"),
		SHA:          getenv("GITHUB_SHA"),
		Event:        getenv("GITHUB_EVENT_NAME"),
		WorkflowRef:  getenv("GITHUB_WORKFLOW_REF"),
		Actor:        getenv("GITHUB_ACTOR"),
	}
	if len(event) > 0 {
		pr, err := PullRequestNumber(event)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("event payload: %v; pull request left out of the run metadata", err))
		}
		md.PullRequest = pr
	}
	return md, warnings
}

// PullRequestNumber returns the pull request of an event payload: the
// `pull_request` object of pull_request, pull_request_target and review
// events, or the issue of an issue_comment on a pull request. 0 when the
// event is about no pull request.
func PullRequestNumber(event []byte) (int64, error) {
	var p struct {
		PullRequest *struct {
			Number int64 `json:"number"`
		} `json:"pull_request"`
		Issue *struct {
			Number      int64           `json:"number"`
			PullRequest json.RawMessage `json:"pull_request"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(event, &p); err != nil {
		return 0, fmt.Errorf("decode: %w", err)
	}
	switch {
	case p.PullRequest != nil && p.PullRequest.Number > 0:
		return p.PullRequest.Number, nil
	case p.Issue != nil && len(p.Issue.PullRequest) > 0 && string(p.Issue.PullRequest) != "null" && p.Issue.Number > 0:
		return p.Issue.Number, nil
	}
	return 0, nil
}
