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
	path := filepath.Join(dir, "smek-"+id+".yaml")
	tmp, err := os.CreateTemp(dir, ".smek-*.yaml")
	if err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(kubeconfig); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	if home.InContainer {
		for _, p := range []string{dir, tmp.Name()} {
			if err := chownLike(p, home.Dir); err != nil {
				return "", fmt.Errorf("write kubeconfig: %w", err)
			}
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}
