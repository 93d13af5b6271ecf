package ghaction_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/ghaction"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestResolveHome(t *testing.T) {
	containerHome := t.TempDir()
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	tests := []struct {
		name          string
		containerHome string
		env           map[string]string
		want          ghaction.Home
		wantErr       string
	}{
		{
			name:          "container action",
			containerHome: containerHome,
			env:           map[string]string{"HOME": containerHome, "RUNNER_TEMP": "/home/runner/work/_temp"},
			want:          ghaction.Home{Dir: containerHome, HostDir: "/home/runner/work/_temp/_github_home", InContainer: true},
		},
		{
			name:          "container action without RUNNER_TEMP",
			containerHome: containerHome,
			env:           map[string]string{"HOME": containerHome},
			wantErr:       "RUNNER_TEMP is not set",
		},
		{
			name:          "container action with relative RUNNER_TEMP",
			containerHome: containerHome,
			env:           map[string]string{"RUNNER_TEMP": "_temp"},
			wantErr:       "not an absolute path",
		},
		{
			name:          "host",
			containerHome: missing,
			env:           map[string]string{"HOME": "/home/dev", "RUNNER_TEMP": "/tmp/x"},
			want:          ghaction.Home{Dir: "/home/dev", HostDir: "/home/dev"},
		},
		{
			name:          "host without HOME",
			containerHome: missing,
			env:           map[string]string{},
			wantErr:       "HOME is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ghaction.ResolveHome(env(tt.env), tt.containerHome)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHostPath(t *testing.T) {
	h := ghaction.Home{Dir: "/github/home", HostDir: "/home/runner/work/_temp/_github_home", InContainer: true}
	got, err := h.HostPath("/github/home/.kube/smek-c-abc123.yaml")
	if want := "/home/runner/work/_temp/_github_home/.kube/smek-c-abc123.yaml"; err != nil || got != want {
		t.Errorf("HostPath = %q, %v; want %q", got, err, want)
	}
	for _, p := range []string{"/github/workspace/x", "/github/home/../x", "/github/homely"} {
		if got, err := h.HostPath(p); err == nil {
			t.Errorf("HostPath(%q) = %q, want an error", p, got)
		}
	}
}

func TestWriteKubeconfig(t *testing.T) {
	home := ghaction.Home{Dir: t.TempDir()}
	home.HostDir = home.Dir
	p, err := ghaction.WriteKubeconfig(home, "c-abc123", "apiVersion: v1\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home.Dir, ".kube", "smek-c-abc123.yaml"); p != want {
		t.Errorf("path = %s, want %s", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != "apiVersion: v1\n" {
		t.Errorf("content = %q", b)
	}
	// Writing again replaces the file (a restarted cluster's new kubeconfig).
	if _, err := ghaction.WriteKubeconfig(home, "c-abc123", "v2\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "v2\n" {
		t.Errorf("content after rewrite = %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("kube dir holds %d entries, want only the kubeconfig (no temp files left)", len(entries))
	}
	for _, id := range []string{"", "../../etc/passwd", "c-ABC", "c-a/b", "x-abc"} {
		if _, err := ghaction.WriteKubeconfig(home, id, "x"); err == nil {
			t.Errorf("WriteKubeconfig(id %q) = nil error", id)
		}
	}
}

// TestReplaceFile: a kubeconfig is replaced in one rename, private
// whatever the mode of the file it replaces, and missing folders are made.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "smek-c-abc123.yaml")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ghaction.ReplaceFile(p, "new"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "new" {
		t.Errorf("got %q, %v; want new", b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("folder holds %d entries, want the file alone", len(es))
	}

	deep := filepath.Join(dir, "a", "b", "kc.yaml")
	if err := ghaction.ReplaceFile(deep, "x"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(deep)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("new folder mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestHostKubeconfig(t *testing.T) {
	env := map[string]string{"RUNNER_TEMP": "/home/runner/work/_temp"}
	if got, want := ghaction.HostKubeconfig(func(k string) string { return env[k] }, "c-abc123"),
		"/home/runner/work/_temp/_github_home/.kube/smek-c-abc123.yaml"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := ghaction.HostKubeconfig(func(string) string { return "" }, "c-abc123"); got != "" {
		t.Errorf("outside a job: got %q, want none", got)
	}
}
