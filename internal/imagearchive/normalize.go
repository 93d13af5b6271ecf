package imagearchive

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Normalize returns the full reference containerd records for ref, as
// Docker's reference.ParseNormalizedNamed does: a missing registry is
// docker.io, a single-component name on docker.io is under library/, a
// missing tag is latest (app:dev → docker.io/library/app:dev).
func Normalize(ref string) (string, error) {
	if _, err := name.ParseReference(ref); err != nil {
		return "", fmt.Errorf("image name %q: %v", ref, err)
	}
	rest, digest, _ := strings.Cut(ref, "@")
	repo, tag := rest, ""
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		repo, tag = rest[:i], rest[i+1:]
	}
	domain, remainder := "docker.io", repo
	if i := strings.Index(repo, "/"); i >= 0 {
		if first := repo[:i]; strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			domain, remainder = first, repo[i+1:]
		}
	}
	if domain == "index.docker.io" {
		domain = "docker.io"
	}
	if domain == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	out := domain + "/" + remainder
	if tag == "" && digest == "" {
		tag = "latest"
	}
	if tag != "" {
		out += ":" + tag
	}
	if digest != "" {
		out += "@" + digest
	}
	return out, nil
}
