package main

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// section returns the keys of a top-level mapping of action.yml (inputs,
// outputs, runs) and, for each, its `default:` when it has one. action.yml
// is plain block YAML; a line scan keeps a YAML library out of the module's
// test dependencies.
func section(t *testing.T, name string) (keys []string, defaults map[string]string) {
	t.Helper()
	f, err := os.Open("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defaults = map[string]string{}
	in, key := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if !strings.HasPrefix(line, " ") {
			in = line == name+":"
			continue
		}
		if !in {
			continue
		}
		switch {
		case strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   "):
			key = strings.TrimSuffix(strings.TrimSpace(line), ":")
			keys = append(keys, key)
		case strings.HasPrefix(strings.TrimSpace(line), "default:"):
			v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "default:"))
			defaults[key] = strings.Trim(v, `"`)
		}
	}
	return keys, defaults
}

func TestActionYAML(t *testing.T) {
	inputs, defaults := section(t, "inputs")
	want := []string{"api-url", "token", "oidc-audience", "k8s-version", "minutes-to-live", "cluster-size",
		"enable-privileged", "keep-cluster", "notification-email", "wait", "images", "keep-on-failure", "diagnostics", "collect-diagnostics", "job-status", "job-id"}
	if !slices.Equal(inputs, want) {
		t.Errorf("inputs = %q, want %q", inputs, want)
	}
	if defaults["job-id"] != "${{ job.check_run_id }}" {
		t.Errorf("job-id default = %q, want the job's check run id", defaults["job-id"])
	}
	// The runner evaluates inputs again for the post step: there
	// job.status is the job's status so far.
	if defaults["job-status"] != "${{ job.status }}" {
		t.Errorf("job-status default = %q, want the job's status", defaults["job-status"])
	}
	if d, err := parseKeepFor("keep-on-failure", defaults["keep-on-failure"]); err != nil || d != 0 {
		t.Errorf("keep-on-failure default = %q (%v, %v), want off", defaults["keep-on-failure"], d, err)
	}
	if v, err := parseDiagnostics("diagnostics", defaults["diagnostics"]); err != nil || v != diagnosticsOnFailure {
		t.Errorf("diagnostics default = %q (%v), want on-failure", defaults["diagnostics"], err)
	}
	if defaults["keep-cluster"] != "false" {
		t.Errorf("keep-cluster default = %q, want false (CI clusters end with the job)", defaults["keep-cluster"])
	}
	// The defaults must be values the action accepts.
	in := createInputs{
		K8sVersion: defaults["k8s-version"], MinutesToLive: defaults["minutes-to-live"], ClusterSize: defaults["cluster-size"],
		EnablePrivileged: defaults["enable-privileged"], KeepCluster: defaults["keep-cluster"],
		NotificationEmail: defaults["notification-email"], Wait: defaults["wait"],
	}
	if _, wait, err := in.request(nil); err != nil || wait != defaultWait {
		t.Errorf("action.yml's defaults: wait %v, %v; want %v and no error", wait, err, defaultWait)
	}

	outputs, _ := section(t, "outputs")
	if want := []string{"cluster-id", "kubeconfig", "api-server", "expires-at", "diagnostics"}; !slices.Equal(outputs, want) {
		t.Errorf("outputs = %q, want %q", outputs, want)
	}

	runs, _ := section(t, "runs")
	b, _ := os.ReadFile("../action.yml")
	for _, want := range []string{"using: docker", "entrypoint: /smek", "post-entrypoint: /" + postName, "post-if: always()"} {
		if !strings.Contains(string(b), "\n  "+want+"\n") {
			t.Errorf("action.yml runs (%q) lacks %q", runs, want)
		}
	}
	// On main the moving major tag; on a release's commit its own image
	// by tag and digest (tools/release pin).
	if image := runsValue(t, "image"); !actionImage.MatchString(image) {
		t.Errorf("action.yml runs.image = %q, want docker://ghcr.io/smek/action:v1 or :vX.Y.Z@sha256:<digest>", image)
	}
}

var actionImage = regexp.MustCompile(`^docker://ghcr\.io/smek/action:(v1|v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?@sha256:[0-9a-f]{64})$`)

// TestDocs: every input and output is documented.
func TestDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/action.md")
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := section(t, "inputs")
	outputs, _ := section(t, "outputs")
	for _, name := range append(inputs, outputs...) {
		if !strings.Contains(string(b), "| `"+name+"` |") {
			t.Errorf("docs/action.md has no table row for %q", name)
		}
	}
	for _, c := range commands {
		if !strings.Contains(string(b), "smek "+c.name) {
			t.Errorf("docs/action.md does not show `smek %s`", c.name)
		}
	}
}
