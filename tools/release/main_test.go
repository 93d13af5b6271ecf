package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitRepo makes a repository with a commit per release: "v1.2.0" is a
// lightweight tag, "v1.2.0!" an annotated one, "v1@v1.2.0" a tag at that
// release's commit ("v1!@v1.2.0" an annotated one).
func gitRepo(t *testing.T, tags ...string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q")
	for _, tag := range tags {
		if name, at, ok := strings.Cut(tag, "@"); ok {
			if name, ok := strings.CutSuffix(name, "!"); ok {
				git("tag", "-a", "-m", name, name, at)
			} else {
				git("tag", name, at)
			}
			continue
		}
		git("commit", "-q", "--allow-empty", "-m", tag)
		if name, ok := strings.CutSuffix(tag, "!"); ok {
			git("tag", "-a", "-m", name, name)
		} else {
			git("tag", tag)
		}
	}
	return dir
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		tags          []string
		want          string
	}{
		{"first release, no tags", "v1.0.0", nil, "move-major=true"},
		{"newer", "v1.2.2", []string{"v1.2.0", "v1.2.1!", "v1@v1.2.1"}, "move-major=true"},
		{"older patch", "v1.2.0", []string{"v1.1.0!", "v1.2.1!", "v1@v1.2.1"}, "move-major=false"},
		{"prerelease", "v1.3.0-rc.1", []string{"v1.2.1", "v1@v1.2.1"}, "move-major=false"},
		// v1 as an annotated tag at the commit of v1.2.1 (annotated too).
		{"annotated major tag", "v1.2.2", []string{"v1.2.1!", "v1!@v1.2.1"}, "move-major=true"},
		{"annotated major tag, older patch", "v1.2.0", []string{"v1.2.1!", "v1!@v1.2.1"}, "move-major=false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := gitRepo(t, tc.tags...)
			var out, errOut bytes.Buffer
			if err := run(t.Context(), []string{"plan", "-version", tc.version, "-git-dir", dir}, &out, &errOut); err != nil {
				t.Fatalf("plan: %v\n%s", err, errOut.String())
			}
			if !strings.Contains(out.String(), "\n"+tc.want+"\n") {
				t.Errorf("plan printed %q, want %s (reasons: %s)", out.String(), tc.want, errOut.String())
			}
		})
	}
}

func TestPlanRefusesAnExistingVersion(t *testing.T) {
	dir := gitRepo(t, "v1.2.1")
	err := run(t.Context(), []string{"plan", "-version", "v1.2.1", "-git-dir", dir}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || errors.Is(err, errUsage) {
		t.Errorf("plan of a released version: %v, want a failure", err)
	}
}

func TestPin(t *testing.T) {
	orig, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "action.yml")
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"pin", "-version", "v1.2.3", "-image", "ghcr.io/smek/action", "-digest", digest, "-file", file}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if want := "\n  image: docker://ghcr.io/smek/action:v1.2.3@" + digest + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("pinned action.yml lacks %q:\n%s", want, b)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"plan"},
		{"plan", "-version", "1.2.3"},
		{"plan", "-version", "v1.2.3", "extra"},
		{"dist", "-version", "v1.2.3"},
		{"dist", "-version", "v1.2.3", "linux"},
		{"pin", "-version", "v1.2.3", "-image", "ghcr.io/smek/action", "-digest", "sha256:abc"},
	} {
		if err := run(t.Context(), args, &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
			t.Errorf("release %q: %v, want a usage error", args, err)
		}
	}
}
