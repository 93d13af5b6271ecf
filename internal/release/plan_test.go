package release

import (
	"slices"
	"strings"
	"testing"
)

// tags builds a repository's tags: "v1.2.3@c1" names commit c1.
func tags(specs ...string) []Tag {
	var ts []Tag
	for _, s := range specs {
		name, commit, _ := strings.Cut(s, "@")
		ts = append(ts, Tag{Name: name, Commit: commit})
	}
	return ts
}

func TestPlan(t *testing.T) {
	history := tags("v1.0.0@c0", "v1.1.0@c1", "v1.2.0@c2", "v1.2.1@c3", "v1@c3")
	for _, tc := range []struct {
		name    string
		version string
		tags    []Tag
		// want is move-major, move-minor, move-latest.
		want [3]bool
	}{
		{"a newer patch moves every tag", "v1.2.2", history, [3]bool{true, true, true}},
		{"a newer minor moves every tag", "v1.3.0", history, [3]bool{true, true, true}},
		{"an older patch moves nothing backwards", "v1.1.1", history, [3]bool{false, true, false}},
		{"an older patch of the newest minor", "v1.2.0", tags("v1.2.1@c3", "v1@c3"), [3]bool{false, false, false}},
		{"a prerelease moves nothing", "v1.3.0-rc.1", history, [3]bool{false, false, false}},
		{"a prerelease of a patch moves nothing", "v1.2.2-rc.1", history, [3]bool{false, false, false}},
		{"the first release starts every tag", "v1.0.0", nil, [3]bool{true, true, true}},
		{"a new major starts its tag", "v2.0.0", history, [3]bool{true, true, true}},
		{"an old major's patch moves its own tags only", "v1.2.2", append(tags("v2.0.0@c9", "v2@c9"), history...), [3]bool{true, true, false}},
		{"prereleases do not hold tags back", "v1.3.0", append(tags("v1.4.0-rc.1@c8"), history...), [3]bool{true, true, true}},
		// v1.2.1 was bad and v1 was moved back to v1.2.0 by hand: the
		// fix v1.2.2 moves it forward; v1.1.1 would not.
		{"after a rollback a newer patch moves the major tag", "v1.2.2", tags("v1.1.0@c1", "v1.2.0@c2", "v1.2.1@c3", "v1@c2"), [3]bool{true, true, true}},
		{"after a rollback an older patch does not", "v1.1.1", tags("v1.1.0@c1", "v1.2.0@c2", "v1.2.1@c3", "v1@c2"), [3]bool{false, true, false}},
		{"other tags do not count", "v1.2.2", append(tags("nightly@c7", "v2@c0", "vfoo@c7"), history...), [3]bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseVersion(tc.version)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPlan(v, tc.tags)
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]bool{p.MoveMajor, p.MoveMinor, p.MoveLatest}; got != tc.want {
				t.Errorf("NewPlan(%s) moves major, minor, latest = %v, want %v\n%s", v, got, tc.want, strings.Join(p.Reasons, "\n"))
			}
		})
	}
}

func TestPlanRefuses(t *testing.T) {
	v, _ := ParseVersion("v1.2.2")
	if _, err := NewPlan(v, tags("v1.2.2@c4", "v1@c4")); err == nil {
		t.Error("a version released already: no error")
	}
	if _, err := NewPlan(v, tags("v1.2.1@c3", "v1@c5")); err == nil {
		t.Error("v1 at a commit no version names: no error")
	}
}

func TestPlanOutputs(t *testing.T) {
	v, _ := ParseVersion("v1.3.0-rc.1")
	p, err := NewPlan(v, tags("v1.2.0@c2", "v1@c2"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"version=v1.3.0-rc.1", "prerelease=true", "major=v1", "minor=v1.3", "move-major=false", "move-minor=false", "move-latest=false"}
	if got := p.Outputs(); !slices.Equal(got, want) {
		t.Errorf("Outputs() = %q, want %q", got, want)
	}
}
