package release

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// repoRE is an image repository without tag or digest, lower case as
	// registries want it: ghcr.io/smek/action.
	repoRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)
)

// ImageRef is the reference a release's action.yml runs: the version's tag,
// for people reading it, and the digest, which is what Docker pulls:
// docker://ghcr.io/smek/action:v1.2.3@sha256:....
func ImageRef(repo string, v Version, digest string) (string, error) {
	if !repoRE.MatchString(repo) {
		return "", fmt.Errorf("image repository %q: want a lower-case name like ghcr.io/owner/action, without tag or digest", repo)
	}
	if !digestRE.MatchString(digest) {
		return "", fmt.Errorf("image digest %q: want sha256:<64 hex digits>", digest)
	}
	return fmt.Sprintf("docker://%s:%s@%s", repo, v, digest), nil
}

// PinImage returns action.yml with runs.image set to ref. The line it
// replaces must be the only `image:` of the runs block and name a
// docker:// image, so that nothing but the reference changes.
func PinImage(actionYML []byte, ref string) ([]byte, error) {
	lines := strings.SplitAfter(string(actionYML), "\n")
	inRuns, at := false, -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !strings.HasPrefix(l, " ") {
			inRuns = strings.TrimRight(l, "\r\n") == "runs:"
			continue
		}
		if !inRuns || !strings.HasPrefix(t, "image:") {
			continue
		}
		if at >= 0 {
			return nil, fmt.Errorf("pin action.yml: runs has two image lines (%d and %d)", at+1, i+1)
		}
		at = i
	}
	if at < 0 {
		return nil, fmt.Errorf("pin action.yml: runs has no image line")
	}
	old := lines[at]
	indent := old[:len(old)-len(strings.TrimLeft(old, " "))]
	value := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(old), "image:"))
	if !strings.HasPrefix(value, "docker://") {
		return nil, fmt.Errorf("pin action.yml: runs.image %q is not a docker:// image", value)
	}
	lines[at] = indent + "image: " + ref + "\n"
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
	}
	return b.Bytes(), nil
}
