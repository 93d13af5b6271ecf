package release

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// pinnedUses is a third-party action by full commit SHA with the
	// version it is as a comment: owner/repo@<sha> # v1.2.3.
	pinnedUses  = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+){0,2}$`)
	pinnedImage = regexp.MustCompile(`^docker://[^@\s]+@sha256:[0-9a-f]{64}$`)
)

// workflowProblems checks a workflow file, line by line (plain block
// YAML; no YAML library in the module): every job declares its
// permissions and so does the file, every action from elsewhere is pinned
// by commit SHA with its version as a comment, and no `run:` script holds
// a ${{ }} expression (values go through env, so that an input cannot
// inject shell).
func workflowProblems(src string) []string {
	var problems []string
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	lines := strings.Split(src, "\n")
	top := ""
	jobs := map[string]bool{} // job → declares permissions
	var order []string
	job := ""
	hasTopPermissions := false
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " ")
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		n := indent(l)
		switch {
		case n == 0:
			top, _, _ = strings.Cut(t, ":")
			if top == "permissions" {
				hasTopPermissions = true
			}
			continue
		case top == "jobs" && n == 2:
			job = strings.TrimSuffix(t, ":")
			jobs[job] = false
			order = append(order, job)
		case top == "jobs" && n == 4 && strings.HasPrefix(t, "permissions:"):
			jobs[job] = true
		}
		item := strings.TrimPrefix(t, "- ")
		if v, ok := strings.CutPrefix(item, "uses:"); ok {
			v = strings.TrimSpace(v)
			switch {
			case strings.HasPrefix(v, "./"):
			case strings.HasPrefix(v, "docker://"):
				if !pinnedImage.MatchString(v) {
					problems = append(problems, fmt.Sprintf("line %d: image not pinned by digest: %s", i+1, v))
				}
			case !pinnedUses.MatchString(v):
				problems = append(problems, fmt.Sprintf("line %d: action not pinned by commit SHA with a # vX.Y.Z comment: %s", i+1, v))
			}
		}
		if v, ok := strings.CutPrefix(item, "run:"); ok {
			script := []string{v}
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || indent(lines[i+1]) > n+len(t)-len(item)) {
				i++
				script = append(script, lines[i])
			}
			if strings.Contains(strings.Join(script, "\n"), "${{") {
				problems = append(problems, fmt.Sprintf("line %d: a run script holds ${{ }}; pass the value through env", i+1))
			}
		}
	}
	if !hasTopPermissions {
		problems = append(problems, "no top-level permissions (permissions: {} and each job its own)")
	}
	for _, j := range order {
		if !jobs[j] {
			problems = append(problems, "job "+j+" declares no permissions")
		}
	}
	return problems
}

// TestWorkflows holds the repository's workflows to their supply-chain
// rules.
func TestWorkflows(t *testing.T) {
	files, err := filepath.Glob("../../.github/workflows/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range workflowProblems(string(b)) {
			t.Errorf("%s: %s", filepath.Base(f), p)
		}
	}
}

// TestWorkflowProblems: the checker finds what it must.
func TestWorkflowProblems(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	good := `on: push
permissions: {}
jobs:
  a:
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@` + sha + ` # v7.0.1
      - uses: ./local
      - uses: docker://alpine@sha256:` + strings.Repeat("a", 64) + `
      - name: x
        env:
          V: ${{ inputs.version }}
        run: |
          echo "$V"
`
	if p := workflowProblems(good); len(p) != 0 {
		t.Errorf("good workflow: %q", p)
	}
	for name, bad := range map[string]string{
		"tag":               strings.Replace(good, "@"+sha+" # v7.0.1", "@v4", 1),
		"sha, no comment":   strings.Replace(good, " # v7.0.1", "", 1),
		"short sha":         strings.Replace(good, sha, sha[:12], 1),
		"image by tag":      strings.Replace(good, "@sha256:"+strings.Repeat("a", 64), ":3.20", 1),
		"job permissions":   strings.Replace(good, "    permissions:\n      contents: read\n", "", 1),
		"file permissions":  strings.Replace(good, "permissions: {}\n", "", 1),
		"expression in run": strings.Replace(good, `echo "$V"`, `echo "${{ inputs.version }}"`, 1),
		"inline run":        strings.Replace(good, "run: |\n          echo \"$V\"", "run: echo ${{ github.head_ref }}", 1),
	} {
		if p := workflowProblems(bad); len(p) == 0 {
			t.Errorf("%s: no problem found in\n%s", name, bad)
		}
	}
}
