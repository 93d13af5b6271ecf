package release

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// workflowStep returns the run script and the if: condition of the step
// called name in a workflow, by a line scan of its block YAML.
func workflowStep(t *testing.T, file, name string) (run, cond string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "- name: "+name {
			continue
		}
		for j := i + 1; j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indent(lines[j]) > indent(l)); j++ {
			if c, ok := strings.CutPrefix(strings.TrimSpace(lines[j]), "if: "); ok {
				cond = c
			}
			if strings.TrimSpace(lines[j]) != "run: |" {
				continue
			}
			var body []string
			base := -1
			for k := j + 1; k < len(lines) && (strings.TrimSpace(lines[k]) == "" || indent(lines[k]) > indent(lines[j])); k++ {
				if base < 0 {
					base = indent(lines[k])
				}
				body = append(body, strings.TrimPrefix(lines[k], strings.Repeat(" ", base)))
			}
			return strings.Join(body, "\n") + "\n", cond
		}
	}
	t.Fatalf("%s has no step %q with a run script", file, name)
	return "", ""
}

// releaseRepo is a repository being released: origin, a bare repository
// with the published history, and checkouts of it, as the workflow's jobs
// get them.
type releaseRepo struct {
	t      *testing.T
	origin string
	env    []string
}

func (r *releaseRepo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkout clones origin at main, detached, as actions/checkout does for
// a job of a run on main.
func (r *releaseRepo) checkout() string {
	r.t.Helper()
	dir := r.t.TempDir()
	r.git(dir, "clone", "-q", r.origin, ".")
	r.git(dir, "checkout", "-q", "--detach", "origin/main")
	return dir
}

// step runs a workflow step's script as `shell: bash` does, in dir, and
// returns what it wrote to GITHUB_OUTPUT.
func (r *releaseRepo) step(dir, script string, env ...string) string {
	r.t.Helper()
	output := filepath.Join(r.t.TempDir(), "github_output")
	if err := os.WriteFile(output, nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
	f := filepath.Join(r.t.TempDir(), "step.sh")
	if err := os.WriteFile(f, []byte(script), 0o755); err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", f)
	cmd.Dir = dir
	cmd.Env = append(append(r.env, "GITHUB_OUTPUT="+output), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("step: %v\n%s\n%s", err, script, out)
	}
	b, _ := os.ReadFile(output)
	return string(b)
}

// TestReleaseWorkflowTags runs release.yml's git steps against a local
// origin: the plan, the release commit with action.yml pinned to the
// image and its tag, and the major tag moved to it. Releases in a row show
// that v1 moves forward only, never to a prerelease, and that the release
// commit changes nothing but the image line.
func TestReleaseWorkflowTags(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles tools/release in each step")
	}
	for _, cmd := range []string{"git", "bash", "go"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("no %s", cmd)
		}
	}
	workflow := "../../.github/workflows/release.yml"
	planScript, _ := workflowStep(t, workflow, "plan the moving tags")
	pinScript, _ := workflowStep(t, workflow, "commit action.yml pinned to the image, tag the commit")
	moveScript, moveIf := workflowStep(t, workflow, "move ${{ needs.build.outputs.major }} to the release commit")
	// The test runs the move as the workflow does: only when the plan says.
	if moveIf != "needs.build.outputs.move-major == 'true'" {
		t.Fatalf("the major tag's step runs if %q, want only when the plan moves it", moveIf)
	}

	// No git configuration but the steps' own; Go's caches as they are.
	r := &releaseRepo{t: t, origin: filepath.Join(t.TempDir(), "origin.git"), env: append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com", "GITHUB_REPOSITORY_OWNER=Smek")}

	// The repository: what `go run ./tools/release` needs, and action.yml.
	src := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum", "action.yml", "tools/release/main.go",
		"internal/release/version.go", "internal/release/plan.go", "internal/release/dist.go", "internal/release/pin.go"} {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.git(src, "init", "-q", "-b", "main")
	r.git(src, "add", ".")
	r.git(src, "commit", "-q", "-m", "main")
	r.git("", "init", "-q", "--bare", r.origin)
	r.git(src, "push", "-q", r.origin, "main")

	publish := func(version string) (plan string) {
		t.Helper()
		digest := "sha256:" + strings.Repeat(version[len(version)-1:], 64)[:64]
		// build: the plan, on the commit being released (main).
		plan = r.step(r.checkout(), planScript, "VERSION="+version)
		if !strings.Contains(plan, "owner=smek\n") {
			t.Errorf("plan output %q lacks owner=smek (lower case)", plan)
		}
		// publish: the release commit and its tag.
		r.step(r.checkout(), pinScript, "VERSION="+version, "OWNER=smek", "DIGEST="+digest)
		// move-tags, when the plan says so.
		if strings.Contains(plan, "move-major=true\n") {
			r.step(r.checkout(), moveScript, "VERSION="+version, "MAJOR=v1")
		}
		return plan
	}
	commit := func(ref string) string { return r.git(r.origin, "rev-parse", ref+"^{commit}") }
	main := commit("main")

	publish("v1.2.0")
	relCommit := commit("v1.2.0")
	if parent := commit("v1.2.0^"); parent != main {
		t.Errorf("v1.2.0's parent is %s, want main (%s)", parent, main)
	}
	if changed := r.git(r.origin, "diff", "--name-only", main, "v1.2.0"); changed != "action.yml" {
		t.Errorf("the release commit changes %q, want action.yml only", changed)
	}
	pinned := r.git(r.origin, "show", "v1.2.0:action.yml")
	if want := "\n  image: docker://ghcr.io/smek/action:v1.2.0@sha256:" + strings.Repeat("0", 64) + "\n"; !strings.Contains("\n"+pinned+"\n", want) {
		t.Errorf("v1.2.0's action.yml lacks %q", want)
	}
	if got := commit("v1"); got != relCommit {
		t.Errorf("after v1.2.0, v1 is at %s, want the release commit %s", got, relCommit)
	}

	// A prerelease moves nothing; nor does an older patch.
	if plan := publish("v1.3.0-rc.1"); !strings.Contains(plan, "move-major=false\n") {
		t.Errorf("plan of v1.3.0-rc.1: %q", plan)
	}
	if plan := publish("v1.1.9"); !strings.Contains(plan, "move-major=false\nmove-minor=true\nmove-latest=false\n") {
		t.Errorf("plan of v1.1.9: %q", plan)
	}
	if got := commit("v1"); got != relCommit {
		t.Errorf("after v1.3.0-rc.1 and v1.1.9, v1 is at %s, want still v1.2.0's %s", got, relCommit)
	}

	// A newer patch moves it.
	publish("v1.2.1")
	if got, want := commit("v1"), commit("v1.2.1"); got != want {
		t.Errorf("after v1.2.1, v1 is at %s, want %s", got, want)
	}
	// Each release names its own image.
	for v, digit := range map[string]string{"v1.1.9": "9", "v1.2.1": "1", "v1.3.0-rc.1": "1"} {
		b := r.git(r.origin, "show", v+":action.yml")
		if !bytes.Contains([]byte(b), []byte("action:"+v+"@sha256:"+strings.Repeat(digit, 64))) {
			t.Errorf("%s's action.yml does not name its own image", v)
		}
	}
}
