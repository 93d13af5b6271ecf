// Package release decides and builds what a SMEK release publishes: where a
// version stands among the published ones (which moving tags it may
// take), the CLI binaries with their checksums, the action image's root
// filesystem, and action.yml pinned to the image's digest.
package release

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Version is a release version, vMAJOR.MINOR.PATCH with an optional
// prerelease part (v1.3.0-rc.1), ordered as Semantic Versioning 2.0 orders
// them. Build metadata (+...) is refused: it cannot be part of an image tag.
type Version struct {
	Major, Minor, Patch int
	// Pre holds the dot-separated prerelease identifiers; empty for a
	// release.
	Pre []string
}

// ParseVersion parses a release tag like v1.2.3 or v1.3.0-rc.1.
func ParseVersion(s string) (Version, error) {
	var v Version
	rest, ok := strings.CutPrefix(s, "v")
	if !ok {
		return v, fmt.Errorf("version %q: want vMAJOR.MINOR.PATCH", s)
	}
	if strings.Contains(rest, "+") {
		return v, fmt.Errorf("version %q: build metadata (+...) cannot be an image tag", s)
	}
	core, pre, hasPre := strings.Cut(rest, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("version %q: want vMAJOR.MINOR.PATCH", s)
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := numeric(p)
		if err != nil {
			return v, fmt.Errorf("version %q: %w", s, err)
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	if hasPre {
		v.Pre = strings.Split(pre, ".")
		for _, id := range v.Pre {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return v, fmt.Errorf("version %q: prerelease identifier %q is not [0-9A-Za-z-]+", s, id)
			}
			if isDigits(id) && len(id) > 1 && id[0] == '0' {
				return v, fmt.Errorf("version %q: numeric prerelease identifier %q has a leading zero", s, id)
			}
		}
	}
	return v, nil
}

// numeric parses a version number: digits, no leading zero.
func numeric(p string) (int, error) {
	if p == "" || !isDigits(p) {
		return 0, fmt.Errorf("%q is not a number", p)
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", p)
	}
	return strconv.Atoi(p)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func (v Version) String() string {
	s := fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	return s
}

// Prerelease reports whether v is a prerelease (v1.3.0-rc.1).
func (v Version) Prerelease() bool { return len(v.Pre) > 0 }

// MajorTag is the moving tag of v's major version: v1.
func (v Version) MajorTag() string { return fmt.Sprintf("v%d", v.Major) }

// MinorTag is the moving tag of v's minor version: v1.2.
func (v Version) MinorTag() string { return fmt.Sprintf("v%d.%d", v.Major, v.Minor) }

// Compare orders versions by Semantic Versioning 2.0 precedence: -1 when
// a < b, 0 when equal, +1 when a > b. A prerelease comes before its
// release (v1.3.0-rc.1 < v1.3.0).
func Compare(a, b Version) int {
	if c := cmp.Compare(a.Major, b.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Minor, b.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Patch, b.Patch); c != 0 {
		return c
	}
	switch {
	case len(a.Pre) == 0 && len(b.Pre) == 0:
		return 0
	case len(a.Pre) == 0:
		return 1
	case len(b.Pre) == 0:
		return -1
	}
	for i := range min(len(a.Pre), len(b.Pre)) {
		if c := comparePre(a.Pre[i], b.Pre[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Pre), len(b.Pre))
}

// comparePre orders two prerelease identifiers: numbers numerically and
// before words, words in ASCII order.
func comparePre(a, b string) int {
	an, bn := isDigits(a), isDigits(b)
	switch {
	case an && bn:
		// No leading zeros: the longer number is the larger.
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// Max returns the greatest of vs, and false when vs is empty.
func Max(vs []Version) (Version, bool) {
	if len(vs) == 0 {
		return Version{}, false
	}
	return slices.MaxFunc(vs, Compare), true
}
