package cluster

import (
	"fmt"
	"strings"
)

// ParseFlavor parses a flavor as Flavor.String writes it:
// "VERSION/SIZE/baseline" or "VERSION/SIZE/privileged", e.g.
// "1.36.3/1-mid/baseline". It checks the form only: whether the version
// is offered is the caller's to decide.
func ParseFlavor(s string) (Flavor, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Flavor{}, fmt.Errorf("flavor %q: want VERSION/SIZE/baseline or VERSION/SIZE/privileged, e.g. 1.36.3/1-mid/baseline", s)
	}
	f := Flavor{K8sVersion: parts[0], Size: parts[1]}
	if !validVersion(f.K8sVersion) {
		return Flavor{}, fmt.Errorf("flavor %q: version %q is not MAJOR.MINOR.PATCH", s, f.K8sVersion)
	}
	if !validSize(f.Size) {
		return Flavor{}, fmt.Errorf("flavor %q: unknown size %q (sizes: %s)", s, f.Size, strings.Join(Sizes, ", "))
	}
	switch parts[2] {
	case "baseline":
	case "privileged":
		f.Privileged = true
	default:
		return Flavor{}, fmt.Errorf("flavor %q: %q is neither baseline nor privileged", s, parts[2])
	}
	return f, nil
}

// validVersion reports whether v is three dot-separated decimal numbers.
func validVersion(v string) bool {
	nums := strings.Split(v, ".")
	if len(nums) != 3 {
		return false
	}
	for _, n := range nums {
		if n == "" || len(n) > 4 {
			return false
		}
		for _, c := range n {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func validSize(s string) bool {
	for _, z := range Sizes {
		if s == z {
			return true
		}
	}
	return false
}
