package release

import (
	"fmt"
	"strconv"
)

// Tag is a git tag and the commit it names.
type Tag struct {
	Name   string
	Commit string
}

// Plan says which moving tags a release takes besides its own vX.Y.Z.
// Moving tags only ever move forward, and never to a prerelease.
type Plan struct {
	Version Version
	// MoveMajor moves the git tag vX, which `uses: smek/action@v1` runs,
	// and the image tag :vX. It is decided against the release vX names
	// now, so that a major tag moved back by hand (a rollback) is not
	// overtaken by an older patch but is by a newer one.
	MoveMajor bool
	// MoveMinor moves the image tag :vX.Y: the greatest release of X.Y.
	MoveMinor bool
	// MoveLatest moves the image tag :latest: the greatest release.
	MoveLatest bool
	// Reasons explain the decisions, one line each, for the log.
	Reasons []string
}

// NewPlan decides what releasing v moves, given the repository's tags.
// Tags that are not versions (v1 itself, anything else) only count as the
// major tag. It fails when v is released already, or when the major tag
// names a commit that no version tag names, since then "forward" is
// unknown.
func NewPlan(v Version, tags []Tag) (Plan, error) {
	p := Plan{Version: v}
	var released []Version // releases, prereleases left out
	byCommit := map[string][]Version{}
	var major *Tag
	for i, t := range tags {
		if t.Name == v.MajorTag() {
			major = &tags[i]
			continue
		}
		tv, err := ParseVersion(t.Name)
		if err != nil {
			continue
		}
		if Compare(tv, v) == 0 {
			return p, fmt.Errorf("plan %s: tag %s exists already (at %s); a release is made once", v, t.Name, t.Commit)
		}
		byCommit[t.Commit] = append(byCommit[t.Commit], tv)
		if !tv.Prerelease() {
			released = append(released, tv)
		}
	}
	if v.Prerelease() {
		p.Reasons = append(p.Reasons, fmt.Sprintf("%s is a prerelease: %s, :%s and :latest stay where they are", v, v.MajorTag(), v.MinorTag()))
		return p, nil
	}

	switch {
	case major == nil:
		p.MoveMajor = true
		p.Reasons = append(p.Reasons, fmt.Sprintf("%s does not exist yet: it starts at %s", v.MajorTag(), v))
	default:
		current, ok := Max(byCommit[major.Commit])
		if !ok {
			return p, fmt.Errorf("plan %s: %s is at %s, which no version tag names; move it by hand to a release", v, major.Name, major.Commit)
		}
		p.MoveMajor = Compare(v, current) > 0
		p.Reasons = append(p.Reasons, forward(v.MajorTag(), current, v, p.MoveMajor))
	}

	var sameMinor []Version
	for _, r := range released {
		if r.Major == v.Major && r.Minor == v.Minor {
			sameMinor = append(sameMinor, r)
		}
	}
	p.MoveMinor, p.Reasons = greatest(":"+v.MinorTag(), v, sameMinor, p.Reasons)
	p.MoveLatest, p.Reasons = greatest(":latest", v, released, p.Reasons)
	return p, nil
}

// greatest decides whether tag, which names the greatest of others, moves
// to v.
func greatest(tag string, v Version, others []Version, reasons []string) (bool, []string) {
	top, ok := Max(others)
	if !ok {
		return true, append(reasons, fmt.Sprintf("%s starts at %s", tag, v))
	}
	move := Compare(v, top) > 0
	return move, append(reasons, forward(tag, top, v, move))
}

func forward(tag string, current, v Version, move bool) string {
	if move {
		return fmt.Sprintf("%s moves forward from %s to %s", tag, current, v)
	}
	return fmt.Sprintf("%s stays at %s: %s is not newer", tag, current, v)
}

// Outputs are the plan as name=value lines for GITHUB_OUTPUT.
func (p Plan) Outputs() []string {
	return []string{
		"version=" + p.Version.String(),
		"prerelease=" + strconv.FormatBool(p.Version.Prerelease()),
		"major=" + p.Version.MajorTag(),
		"minor=" + p.Version.MinorTag(),
		"move-major=" + strconv.FormatBool(p.MoveMajor),
		"move-minor=" + strconv.FormatBool(p.MoveMinor),
		"move-latest=" + strconv.FormatBool(p.MoveLatest),
	}
}
