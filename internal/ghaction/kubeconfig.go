package ghaction

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// credentialKeys are the kubeconfig fields that hold secrets.
var credentialKeys = map[string]bool{
	"token":                   true,
	"client-key-data":         true,
	"client-certificate-data": true,
	"password":                true,
}

// Credentials returns the secret values in a kubeconfig (tokens, client
// keys, passwords) so that they can be masked in the job log. It reads the
// block YAML that clientcmd writes, one `key: value` per line, without a
// YAML library: the action binary stays small, and a value it cannot read
// is simply not returned.
func Credentials(kubeconfig string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(kubeconfig))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "- ")
		key, val, ok := strings.Cut(line, ":")
		if !ok || !credentialKeys[strings.TrimSpace(key)] {
			continue
		}
		val = strings.TrimSpace(val)
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		} else if len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'' {
			val = strings.ReplaceAll(val[1:len(val)-1], "''", "'")
		}
		if val != "" && !strings.ContainsAny(val, "\r\n") {
			out = append(out, val)
		}
	}
	return out
}

// clusterIDPattern is what a cluster id may look like before it becomes a
// file name.
var clusterIDPattern = regexp.MustCompile(`^c-[a-z0-9]{1,32}$`)

// ValidClusterID tells whether id looks like a cluster id, safe in a file
// name.
func ValidClusterID(id string) bool { return clusterIDPattern.MatchString(id) }

// KubeconfigName is the file name of cluster id's kubeconfig.
func KubeconfigName(id string) string { return "smek-" + id + ".yaml" }

// HostKubeconfig is where a later `run:` step of a GitHub Actions job finds
// the kubeconfig of cluster id that the action wrote:
// $RUNNER_TEMP/_github_home/.kube/smek-<id>.yaml. It is "" outside a job.
func HostKubeconfig(getenv func(string) string, id string) string {
	temp := getenv("RUNNER_TEMP")
	if temp == "" || !filepath.IsAbs(temp) {
		return ""
	}
	return filepath.Join(temp, hostHomeDir, ".kube", KubeconfigName(id))
}

// WriteKubeconfig writes kubeconfig to <home.Dir>/.kube/smek-<id>.yaml, mode
// 0600, atomically, and returns its path as this process sees it. In a
// container action (where it runs as root) the file and folder are handed to
// the owner of the home directory, so that the runner's user can read them
// in later steps.
func WriteKubeconfig(home Home, id, kubeconfig string) (string, error) {
	if !clusterIDPattern.MatchString(id) {
		return "", fmt.Errorf("cluster id %q is not a valid id", id)
	}
	dir := filepath.Join(home.Dir, ".kube")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	if home.InContainer {
		if err := chownLike(dir, home.Dir); err != nil {
			return "", fmt.Errorf("write kubeconfig: %w", err)
		}
	}
	path := filepath.Join(dir, KubeconfigName(id))
	owner := ""
	if home.InContainer {
		owner = home.Dir
	}
	if err := writeAtomic(path, kubeconfig, owner); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// ReplaceFile writes a kubeconfig to path, mode 0600, atomically: a reader
// sees the old file or the new one, never a part. A file it replaces keeps
// its owner (a root process rewriting the runner user's file leaves it the
// user's); missing folders are made, mode 0700.
func ReplaceFile(path, kubeconfig string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	owner := ""
	if _, err := os.Stat(path); err == nil {
		owner = path
	}
	if err := writeAtomic(path, kubeconfig, owner); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeAtomic writes content to a temporary file next to path (created
// with mode 0600), hands it to the owner of ownerOf when that is set, and
// renames it over path.
func writeAtomic(path, content, ownerOf string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".smek-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if ownerOf != "" {
		if err := chownLike(tmp.Name(), ownerOf); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}
