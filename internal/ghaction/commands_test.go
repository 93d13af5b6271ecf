package ghaction_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-githubactions"
	"github.com/smek/action/internal/ghaction"
	"github.com/smek/action/internal/ghaction/ghactiontest"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	e := map[string]string{}
	for _, k := range []string{"GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STATE", "GITHUB_STEP_SUMMARY"} {
		e[k] = filepath.Join(dir, strings.ToLower(k))
	}
	var stdout bytes.Buffer
	c := ghaction.Commands{A: githubactions.New(githubactions.WithWriter(&stdout), githubactions.WithGetenv(env(e))), Getenv: env(e)}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetOutput("cluster-id", "c-abc123"))
	must(c.SetOutput("expires-at", "2026-01-02T03:04:05Z"))
	must(c.SetEnv("KUBECONFIG", "/home/runner/work/_temp/_github_home/.kube/smek-c-abc123.yaml"))
	must(c.SaveState("cluster_id", "c-abc123"))
	must(c.AddStepSummary("### SMEK\n"))

	read := func(k string) map[string]string {
		f, err := os.Open(e[k])
		must(err)
		defer f.Close()
		m, err := ghactiontest.ParseFileCommands(f)
		must(err)
		return m
	}
	if got := read("GITHUB_OUTPUT"); got["cluster-id"] != "c-abc123" || got["expires-at"] != "2026-01-02T03:04:05Z" || len(got) != 2 {
		t.Errorf("outputs = %v", got)
	}
	if got := read("GITHUB_ENV")["KUBECONFIG"]; got != "/home/runner/work/_temp/_github_home/.kube/smek-c-abc123.yaml" {
		t.Errorf("KUBECONFIG = %q", got)
	}
	if got := read("GITHUB_STATE")["cluster_id"]; got != "c-abc123" {
		t.Errorf("state cluster_id = %q", got)
	}

	// A value with a line break could end the heredoc and add variables.
	evil := "x\n_GitHubActionsFileCommandDelimeter_\nLD_PRELOAD=/tmp/evil.so"
	if err := c.SetEnv("A", evil); err == nil {
		t.Error("SetEnv accepted a multi-line value")
	}
	if got := read("GITHUB_ENV"); len(got) != 1 {
		t.Errorf("env after the refused value = %v, want only KUBECONFIG", got)
	}

	// Without the file variable: a clear error, not a panic.
	delete(e, "GITHUB_OUTPUT")
	if err := c.SetOutput("x", "y"); err == nil || !strings.Contains(err.Error(), "GITHUB_OUTPUT is not set") {
		t.Errorf("SetOutput without GITHUB_OUTPUT: %v", err)
	}
	// An unwritable file: an error, not a panic.
	e["GITHUB_OUTPUT"] = filepath.Join(dir, "missing", "out")
	if err := c.SetOutput("x", "y"); err == nil {
		t.Error("SetOutput to an unwritable file = nil error")
	}
	delete(e, "GITHUB_STEP_SUMMARY")
	must(c.AddStepSummary("ignored"))
}

// TestInputNames pins the simulation to the runner's naming and to what
// go-githubactions reads: input api-url arrives as INPUT_API-URL.
func TestInputNames(t *testing.T) {
	if got := ghactiontest.InputEnv("api-url"); got != "INPUT_API-URL" {
		t.Errorf("InputEnv(api-url) = %q, want INPUT_API-URL", got)
	}
	e := map[string]string{"INPUT_API-URL": " https://smek.example.com \n", "INPUT_MY_INPUT": "x"}
	a := githubactions.New(githubactions.WithGetenv(env(e)))
	if got := a.GetInput("api-url"); got != "https://smek.example.com" {
		t.Errorf("GetInput(api-url) = %q", got)
	}
	if got := a.GetInput("my input"); got != "x" {
		t.Errorf("GetInput(my input) = %q", got)
	}
}

func TestCommandNames(t *testing.T) {
	e := map[string]string{"GITHUB_OUTPUT": filepath.Join(t.TempDir(), "out")}
	c := ghaction.Commands{A: githubactions.New(githubactions.WithGetenv(env(e))), Getenv: env(e)}
	for _, name := range []string{"", "a=b", "a<<EOF", "a\nb"} {
		if err := c.SetOutput(name, "v"); err == nil {
			t.Errorf("SetOutput(%q) = nil error", name)
		}
	}
}
