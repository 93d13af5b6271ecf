package release

import (
	"os"
	"strings"
	"testing"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestPinImage pins the repository's own action.yml: exactly its
// runs.image line changes, to the release's tag and digest.
func TestPinImage(t *testing.T) {
	orig, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := ParseVersion("v1.2.3")
	ref, err := ImageRef("ghcr.io/smek/action", v, testDigest)
	if err != nil {
		t.Fatal(err)
	}
	if want := "docker://ghcr.io/smek/action:v1.2.3@" + testDigest; ref != want {
		t.Errorf("ImageRef = %q, want %q", ref, want)
	}
	pinned, err := PinImage(orig, ref)
	if err != nil {
		t.Fatal(err)
	}
	a, b := strings.Split(string(orig), "\n"), strings.Split(string(pinned), "\n")
	if len(a) != len(b) {
		t.Fatalf("pinned action.yml has %d lines, the original %d", len(b), len(a))
	}
	var changed []string
	for i := range a {
		if a[i] != b[i] {
			changed = append(changed, b[i])
		}
	}
	if want := "  image: " + ref; len(changed) != 1 || changed[0] != want {
		t.Errorf("changed lines = %q, want only %q", changed, want)
	}
	// A release of a release commit (a re-pin) changes the same line.
	again, err := PinImage(pinned, strings.Replace(ref, "v1.2.3", "v1.2.4", 1))
	if err != nil || !strings.Contains(string(again), "action:v1.2.4@") || strings.Contains(string(again), "v1.2.3@") {
		t.Errorf("re-pin: %v\n%s", err, again)
	}
}

func TestPinImageRefuses(t *testing.T) {
	v, _ := ParseVersion("v1.2.3")
	for _, tc := range []struct{ repo, digest string }{
		{"ghcr.io/smek/action", "sha256:abc"},
		{"ghcr.io/smek/action", strings.ToUpper(testDigest)},
		{"ghcr.io/smek/action", ""},
		{"ghcr.io/Smek/action", testDigest},
		{"ghcr.io/smek/action:v1", testDigest},
		{"action", testDigest},
	} {
		if ref, err := ImageRef(tc.repo, v, tc.digest); err == nil {
			t.Errorf("ImageRef(%q, %q) = %q, want an error", tc.repo, tc.digest, ref)
		}
	}
	ref := "docker://ghcr.io/smek/action:v1.2.3@" + testDigest
	for name, yml := range map[string]string{
		"no image":      "name: x\nruns:\n  using: docker\n",
		"two images":    "runs:\n  using: docker\n  image: docker://a/b:v1\n  image: docker://a/b:v2\n",
		"a Dockerfile":  "runs:\n  using: docker\n  image: Dockerfile\n",
		"image outside": "image: docker://a/b:v1\nruns:\n  using: docker\n",
	} {
		if out, err := PinImage([]byte(yml), ref); err == nil {
			t.Errorf("%s: PinImage = %q, want an error", name, out)
		}
	}
}
