package ghaction_test

import (
	"strings"
	"testing"

	"github.com/smek/action/internal/ghaction"
	"github.com/smek/action/internal/wire"
)

func TestRunMetadata(t *testing.T) {
	e := map[string]string{
		"GITHUB_REPOSITORY":    "octo-org/octo-repo",
		"GITHUB_REPOSITORY_ID": "74",
		"GITHUB_RUN_ID":        "4242",
		"GITHUB_RUN_ATTEMPT":   "2",
		"GITHUB_JOB":           "test",
		"RUNNER_NAME":          "GitHub Actions 7",
		"GITHUB_REF":           "refs/pull/7/merge",
		"GITHUB_SHA":           "ffac537e",
		"GITHUB_EVENT_NAME":    "pull_request",
		"GITHUB_WORKFLOW_REF":  "octo-org/octo-repo/.github/workflows/ci.yml@refs/pull/7/merge",
		"GITHUB_ACTOR":         "octocat",
	}
	got, warnings := ghaction.RunMetadata(env(e), []byte(`{"action":"opened","number":7,"pull_request":{"number":7}}`))
	want := wire.RunMetadata{
		Repository: "octo-org/octo-repo", RepositoryID: 74, RunID: 4242, RunAttempt: 2, Job: "test",
		RunnerName: "GitHub Actions 7", Ref: "refs/pull/7/merge", SHA: "ffac537e", Event: "pull_request",
		WorkflowRef: "octo-org/octo-repo/.github/workflows/ci.yml@refs/pull/7/merge", Actor: "octocat", PullRequest: 7,
	}
	if got != want || len(warnings) != 0 {
		t.Errorf("got %+v, %q\nwant %+v", got, warnings, want)
	}

	e["GITHUB_RUN_ID"] = "12x"
	got, warnings = ghaction.RunMetadata(env(e), []byte(`{not json`))
	if got.RunID != 0 || got.PullRequest != 0 || got.RunAttempt != 2 {
		t.Errorf("got %+v; want the bad values left out, the rest kept", got)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "GITHUB_RUN_ID") || !strings.Contains(warnings[1], "event payload") {
		t.Errorf("warnings = %q, want one for GITHUB_RUN_ID and one for the payload", warnings)
	}
}

func TestPullRequestNumber(t *testing.T) {
	tests := []struct {
		name, event string
		want        int64
		wantErr     bool
	}{
		{"pull_request", `{"number":7,"pull_request":{"number":7}}`, 7, false},
		{"comment on a pull request", `{"issue":{"number":9,"pull_request":{"url":"https://api.github.com/repos/o/r/pulls/9"}}}`, 9, false},
		{"comment on an issue", `{"issue":{"number":9}}`, 0, false},
		{"comment on an issue, null pull_request", `{"issue":{"number":9,"pull_request":null}}`, 0, false},
		{"push", `{"ref":"refs/heads/main","after":"ffac537e"}`, 0, false},
		{"malformed", `{"pull_request":{"number":"7"}}`, 0, true},
		{"not json", `<html>`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ghaction.PullRequestNumber([]byte(tt.event))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzPullRequestNumber(f *testing.F) {
	f.Add([]byte(`{"number":7,"pull_request":{"number":7}}`))
	f.Add([]byte(`{"issue":{"number":9,"pull_request":{}}}`))
	f.Add([]byte(`{"pull_request":{"number":-1}}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		n, err := ghaction.PullRequestNumber(event)
		if n < 0 || (err != nil && n != 0) {
			t.Fatalf("got %d, %v", n, err)
		}
	})
}
