package main

import (
	"strings"

	"github.com/smek/action/internal/registrymirror"
)

// mirrorFlag collects --registry-mirror REGISTRY=URL: repeatable, or
// comma-separated (SMEK_REGISTRY_MIRROR holds such a list). Mirrors of
// one registry keep their order: a node tries them in it, then the
// registry itself.
type mirrorFlag struct{ list []registrymirror.Mirror }

func (f *mirrorFlag) String() string {
	if f == nil {
		return ""
	}
	parts := make([]string, len(f.list))
	for i, m := range f.list {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

func (f *mirrorFlag) Set(s string) error {
	ms, err := registrymirror.Parse(s)
	if err != nil {
		return err
	}
	list, err := registrymirror.Append(f.list, ms...)
	if err != nil {
		return err
	}
	f.list = list
	return nil
}
