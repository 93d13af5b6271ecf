package cluster

import (
	"fmt"
	"slices"
	"strings"
)

// ParseFlavor parses a flavor as Flavor.String writes it:
// VERSION/SIZE/baseline or VERSION/SIZE/privileged, e.g.
// "1.36.3/1-mid/baseline". The version is digits, dots and letters
// ("1.36.3"); the size one of Sizes.
func ParseFlavor(s string) (Flavor, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Flavor{}, fmt.Errorf("flavor %q: want VERSION/SIZE/baseline or VERSION/SIZE/privileged, e.g. 1.36.3/%s/baseline", Truncate(s, 60), SizeMid)
	}
	v, size, p := parts[0], parts[1], parts[2]
	if !flavorVersion(v) {
		return Flavor{}, fmt.Errorf("flavor %q: Kubernetes version %q is not a version like 1.36.3", Truncate(s, 60), Truncate(v, 30))
	}
	if !slices.Contains(Sizes, size) {
		return Flavor{}, fmt.Errorf("flavor %q: unknown size %q (known: %s)", Truncate(s, 60), Truncate(size, 30), strings.Join(Sizes, ", "))
	}
	var priv bool
	switch p {
	case "baseline":
	case "privileged":
		priv = true
	default:
		return Flavor{}, fmt.Errorf("flavor %q: %q is neither baseline nor privileged", Truncate(s, 60), Truncate(p, 30))
	}
	return Flavor{K8sVersion: v, Size: size, Privileged: priv}, nil
}

// flavorVersion accepts a version as flavors carry it: a digit first, then
// digits, letters, dots, '+' and '-' ("1.36.3", "1.36.3+k3s1").
func flavorVersion(v string) bool {
	if v == "" || len(v) > 40 || v[0] < '0' || v[0] > '9' {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r == '.' || r == '+' || r == '-') {
			return false
		}
	}
	return true
}
