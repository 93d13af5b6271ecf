package ghactiontest

import (
	"path/filepath"
	"testing"
)

// TestContainerViews: paths under the mounts become the container's, as
// the runner translates them; other values stay.
func TestContainerViews(t *testing.T) {
	r := New(t)
	r.SetEvent("push", []byte(`{}`))
	s := r.ContainerStep(map[string]string{"api-url": "https://smek.example.com"})
	kubeconfig := filepath.Join(r.HostTemp, "_github_home", ".kube", "smek-c-1.yaml")
	s.Set("KUBECONFIG", kubeconfig)
	s.Set("LOOKALIKE", r.HostTemp+"/_github_home_not")

	got := s.ContainerEnv()
	for k, want := range map[string]string{
		"HOME":              "/github/home",
		"GITHUB_OUTPUT":     "/github/file_commands/" + filepath.Base(s.Getenv("GITHUB_OUTPUT")),
		"GITHUB_STATE":      "/github/file_commands/" + filepath.Base(s.Getenv("GITHUB_STATE")),
		"GITHUB_EVENT_PATH": "/github/workflow/event.json",
		"GITHUB_WORKSPACE":  "/github/workspace",
		"KUBECONFIG":        "/github/home/.kube/smek-c-1.yaml",
		"RUNNER_TEMP":       r.HostTemp,
		"LOOKALIKE":         r.HostTemp + "/_github_home_not",
		"INPUT_API-URL":     "https://smek.example.com",
	} {
		if got[k] != want {
			t.Errorf("action container %s = %q, want %q", k, got[k], want)
		}
	}

	job := s.JobContainerEnv()
	for k, want := range map[string]string{
		"KUBECONFIG":       "/github/home/.kube/smek-c-1.yaml",
		"RUNNER_TEMP":      "/__w/_temp",
		"GITHUB_WORKSPACE": "/__w/octo-repo/octo-repo",
		"GITHUB_OUTPUT":    "/__w/_temp/_runner_file_commands/" + filepath.Base(s.Getenv("GITHUB_OUTPUT")),
	} {
		if job[k] != want {
			t.Errorf("job container %s = %q, want %q", k, job[k], want)
		}
	}
}
