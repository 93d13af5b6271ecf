// Package ghaction knows the GitHub Actions runner environment as a Docker
// container action sees it: where its home is on the host, the run's
// metadata, file commands that fail with errors instead of panics, and the
// credentials in a kubeconfig that must be masked.
//
// The runner starts a container action with <RUNNER_TEMP>/_github_home
// mounted at /github/home (also $HOME), but later `run:` steps execute on
// the host. A file meant for them is written under /github/home and named
// by its host path.
package ghaction

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ContainerHome is where the runner mounts the job's home directory inside
// a container action.
const ContainerHome = "/github/home"

// hostHomeDir is the host directory, under RUNNER_TEMP, that the runner
// mounts at ContainerHome.
const hostHomeDir = "_github_home"

// Home is a directory this process writes to and the name later steps
// know it by.
type Home struct {
	// Dir is the directory as this process sees it.
	Dir string
	// HostDir is the same directory as the host's later steps see it;
	// equal to Dir outside a container action.
	HostDir string
	// InContainer is true when running as a container action.
	InContainer bool
}

// ResolveHome finds the home to write to. containerHome is ContainerHome in
// production and a temporary directory in tests; when it exists, the process
// is a container action and the host path is $RUNNER_TEMP/_github_home.
// Otherwise it is $HOME on both sides.
func ResolveHome(getenv func(string) string, containerHome string) (Home, error) {
	if fi, err := os.Stat(containerHome); err == nil && fi.IsDir() {
		temp := getenv("RUNNER_TEMP")
		if temp == "" {
			return Home{}, fmt.Errorf("%s exists but RUNNER_TEMP is not set: cannot tell the host path of the home directory", containerHome)
		}
		if !filepath.IsAbs(temp) {
			return Home{}, fmt.Errorf("RUNNER_TEMP %q is not an absolute path", temp)
		}
		return Home{Dir: containerHome, HostDir: filepath.Join(temp, hostHomeDir), InContainer: true}, nil
	}
	home := getenv("HOME")
	if home == "" {
		return Home{}, errors.New("HOME is not set")
	}
	if !filepath.IsAbs(home) {
		return Home{}, fmt.Errorf("HOME %q is not an absolute path", home)
	}
	return Home{Dir: home, HostDir: home}, nil
}

// HostPath translates a path under h.Dir into the host's name for it.
func (h Home) HostPath(p string) (string, error) {
	rel, err := filepath.Rel(h.Dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is not under %s", p, h.Dir)
	}
	return filepath.Join(h.HostDir, rel), nil
}
