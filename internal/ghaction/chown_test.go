//go:build unix

package ghaction_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smek/action/internal/ghaction"
)

// TestWriteKubeconfigOwner: in a container action the program is root, but
// later steps run as the runner's user, the owner of the mounted home. The
// kubeconfig (mode 0600) must be theirs.
func TestWriteKubeconfigOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user")
	}
	const runnerUID, runnerGID = 1001, 118 // GitHub-hosted runner's user
	home := ghaction.Home{Dir: t.TempDir(), HostDir: "/home/runner/work/_temp/_github_home", InContainer: true}
	if err := os.Chown(home.Dir, runnerUID, runnerGID); err != nil {
		t.Fatal(err)
	}
	p, err := ghaction.WriteKubeconfig(home, "c-abc123", "apiVersion: v1\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{p, filepath.Dir(p)} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != runnerUID || st.Gid != runnerGID {
			t.Errorf("%s is owned by %d:%d, want the home's owner %d:%d", path, st.Uid, st.Gid, runnerUID, runnerGID)
		}
	}

	// Outside a container nothing changes hands.
	own := ghaction.Home{Dir: t.TempDir()}
	own.HostDir = own.Dir
	if err := os.Chown(own.Dir, runnerUID, runnerGID); err != nil {
		t.Fatal(err)
	}
	p, err = ghaction.WriteKubeconfig(own, "c-abc123", "x")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Geteuid()) {
		t.Errorf("outside a container the file went to uid %d", st.Uid)
	}
}

// TestReplaceFileKeepsOwner: the CLI run as root in the action's image
// rewrites the runner user's kubeconfig; it stays the user's.
func TestReplaceFileKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user")
	}
	const runnerUID, runnerGID = 1001, 118
	p := filepath.Join(t.TempDir(), "smek-c-abc123.yaml")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, runnerUID, runnerGID); err != nil {
		t.Fatal(err)
	}
	if err := ghaction.ReplaceFile(p, "new"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != runnerUID || st.Gid != runnerGID {
		t.Errorf("owned by %d:%d, want %d:%d", st.Uid, st.Gid, runnerUID, runnerGID)
	}
}
