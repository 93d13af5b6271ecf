package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/registrymirror"
)

// --registry-mirror is repeatable and takes comma-separated lists, from
// the command line and SMEK_REGISTRY_MIRROR; the order is kept.
func TestRegistryMirrorFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  string
		want []registrymirror.Mirror
	}{
		{nil, "", nil},
		{[]string{"--registry-mirror", "docker.io=https://a.example", "--registry-mirror", "ghcr.io=https://g.example,docker.io=https://b.example"}, "",
			[]registrymirror.Mirror{{Registry: "docker.io", URL: "https://a.example"}, {Registry: "ghcr.io", URL: "https://g.example"}, {Registry: "docker.io", URL: "https://b.example"}}},
		{nil, "docker.io=https://a.example, *=http://w.example:5000",
			[]registrymirror.Mirror{{Registry: "docker.io", URL: "https://a.example"}, {Registry: "*", URL: "http://w.example:5000"}}},
	} {
		fs := newFlagSet("serve", "", io.Discard)
		var f mirrorFlag
		fs.Var(&f, "registry-mirror", "")
		if err := parseFlags(fs, tt.args, func(k string) string {
			if k == "SMEK_REGISTRY_MIRROR" {
				return tt.env
			}
			return ""
		}); err != nil {
			t.Fatalf("%v %q: %v", tt.args, tt.env, err)
		}
		if !slices.Equal(f.list, tt.want) {
			t.Errorf("%v %q: got %v, want %v", tt.args, tt.env, f.list, tt.want)
		}
	}
}

// A bad or repeated mirror stops serve with a usage error naming the
// flag; from the environment without repeating the value.
func TestServeRefusesBadRegistryMirror(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  string
	}{
		{[]string{"--registry-mirror", "docker.io"}, ""},
		{[]string{"--registry-mirror", "docker.io=ftp://m.example"}, ""},
		{[]string{"--registry-mirror", "docker.io=https://m.example", "--registry-mirror", "docker.io=https://m.example"}, ""},
		{nil, "docker.io=https://user:s3cret@m.example"},
	} {
		env := map[string]string{"SMEK_DATA_DIR": t.TempDir()}
		if tt.env != "" {
			env["SMEK_REGISTRY_MIRROR"] = tt.env
		}
		_, _, err := mainRun(t, env, append([]string{"serve"}, tt.args...)...)
		if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "registry-mirror") {
			t.Errorf("%v %q: got %v (exit %d), want a usage error naming --registry-mirror", tt.args, tt.env, err, exitCodeOf(err))
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v %q: the error %q repeats the secret", tt.args, tt.env, err)
		}
	}
}
