package release

import (
	"slices"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, s := range []string{"v0.0.1", "v1.2.3", "v10.20.30", "v1.3.0-rc.1", "v1.0.0-alpha.beta-2.0"} {
		v, err := ParseVersion(s)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", s, err)
			continue
		}
		if v.String() != s {
			t.Errorf("ParseVersion(%q).String() = %q", s, v.String())
		}
	}
	for _, s := range []string{"", "1.2.3", "v1.2", "v1.2.3.4", "v1", "v01.2.3", "v1.2.3+build.5", "v1.2.3-", "v1.2.3-rc..1", "v1.2.3-rc.01", "v1.2.3-rc_1", "v1.-2.3", "v1.2.x", "latest"} {
		if v, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) = %v, want an error", s, v)
		}
	}
}

// TestCompare checks the order Semantic Versioning 2.0 gives as its
// example, and a few more.
func TestCompare(t *testing.T) {
	ordered := []string{
		"v0.9.9", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta", "v1.0.0-beta.2",
		"v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.2.0", "v1.10.0", "v2.0.0-rc.1", "v2.0.0",
	}
	var vs []Version
	for _, s := range ordered {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	for i := range vs {
		for j := range vs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(vs[i], vs[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(vs)
	slices.Reverse(shuffled)
	if top, _ := Max(shuffled); top.String() != "v2.0.0" {
		t.Errorf("Max = %s, want v2.0.0", top)
	}
}
