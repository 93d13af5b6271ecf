package deps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/smek/action"

// pkg is one package of the module as go list reports it.
type pkg struct {
	ImportPath string
	Imports    []string // direct imports of its non-test files
	Deps       []string // the transitive closure of Imports
}

// kind is what a package of the module is for.
type kind int

const (
	production  kind = iota
	fake             // a stateful fake of a remote API, under internal/fake
	testSupport      // a helper for tests, named xxxtest beside what it supports
	fakeCommand      // the fake's own command, under tools/
)

func (k kind) String() string {
	return [...]string{"production", "fake", "test support", "the fake's command"}[k]
}

// fakeCommands are the commands that run a fake on their own.
var fakeCommands = []string{module + "/tools/hcloudfake"}

// kindOf classifies a package of the module by its path alone, so that a
// fake or test helper must say what it is in its name.
func kindOf(importPath string) kind {
	rel := strings.TrimPrefix(importPath, module+"/")
	switch {
	case slices.Contains(fakeCommands, importPath):
		return fakeCommand
	case rel == "internal/fake" || strings.HasPrefix(rel, "internal/fake/"):
		return fake
	case strings.HasSuffix(path.Base(rel), "fake"):
		return fake // misplaced; layoutErrors reports it
	case strings.HasSuffix(path.Base(rel), "test"):
		return testSupport
	}
	return production
}

// layoutErrors returns every way pkgs break the layout rule: fakes live
// under internal/fake, and no production package links a fake or test
// support, directly or through another package.
func layoutErrors(pkgs []pkg) []string {
	var errs []string
	for _, p := range pkgs {
		k := kindOf(p.ImportPath)
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if k == fake && !strings.HasPrefix(rel, "internal/fake/") {
			errs = append(errs, fmt.Sprintf("%s is named as a fake but is not under internal/fake", rel))
		}
		if k != production {
			continue
		}
		for _, d := range p.Deps {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			if dk := kindOf(d); dk != production {
				how := "imports"
				if !slices.Contains(p.Imports, d) {
					how = "links (through another package)"
				}
				errs = append(errs, fmt.Sprintf("production package %s %s %s %s",
					rel, how, dk, strings.TrimPrefix(d, module+"/")))
			}
		}
	}
	return errs
}

// TestProductionLinksNoFakes lists every package of the module and fails if
// a production package links a fake or test support.
func TestProductionLinksNoFakes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	counts := map[kind]int{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
		counts[kindOf(p.ImportPath)]++
	}
	// A guard against a go list that answers nothing: then the test
	// would pass for the wrong reason.
	if counts[production] < 10 || counts[fake] == 0 || counts[testSupport] == 0 {
		t.Fatalf("go list found %v packages by kind, want production, fakes and test support", counts)
	}
	for _, e := range layoutErrors(pkgs) {
		t.Error(e)
	}
}

// TestLayoutErrors proves the rule against the layout before issue 14,
// where the simulated node (internal/sshnode) imported the Hetzner fake from
// a production path.
func TestLayoutErrors(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name string
		pkgs []pkg
		want []string
	}{
		{
			name: "today's layout",
			pkgs: []pkg{
				{ImportPath: m("internal/fake/hcloudfake/k3snode"), Imports: []string{m("internal/fake/hcloudfake"), m("internal/kube")}, Deps: []string{m("internal/fake/hcloudfake"), m("internal/kube")}},
				{ImportPath: m("tools/hcloudfake"), Imports: []string{m("internal/fake/hcloudfake/k3snode")}, Deps: []string{m("internal/fake/hcloudfake"), m("internal/fake/hcloudfake/k3snode")}},
				{ImportPath: m("internal/local/localtest"), Imports: []string{m("internal/local")}, Deps: []string{m("internal/local")}},
				{ImportPath: m("internal/server"), Imports: []string{m("internal/local")}, Deps: []string{m("internal/local"), "k8s.io/client-go"}},
			},
		},
		{
			name: "before: sshnode and hcloudfake beside production",
			pkgs: []pkg{
				{ImportPath: m("internal/hcloudfake"), Deps: []string{m("internal/cluster")}},
				{ImportPath: m("internal/sshnode"), Imports: []string{m("internal/hcloudfake"), m("internal/kube")}, Deps: []string{m("internal/hcloudfake"), m("internal/kube")}},
				{ImportPath: m("internal/hcloudfake/cmd/hcloudfake"), Imports: []string{m("internal/sshnode")}, Deps: []string{m("internal/hcloudfake"), m("internal/sshnode")}},
			},
			want: []string{
				"internal/hcloudfake is named as a fake but is not under internal/fake",
				"production package internal/sshnode imports fake internal/hcloudfake",
				"internal/hcloudfake/cmd/hcloudfake is named as a fake but is not under internal/fake",
			},
		},
		{
			name: "a server linking test support",
			pkgs: []pkg{
				{ImportPath: m("internal/server"), Imports: []string{m("internal/api")}, Deps: []string{m("internal/api"), m("internal/client/clienttest")}},
			},
			want: []string{"production package internal/server links (through another package) test support internal/client/clienttest"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := layoutErrors(tt.pkgs); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
