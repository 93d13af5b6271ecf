package client_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the client on the standard library and the stdlib-only
// packages it shares with the server (wire, problem, cluster): the action
// binary links it, and must stay small.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard", "github.com/smek/action/internal/client")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/smek/action/internal/client":  true,
		"github.com/smek/action/internal/wire":    true,
		"github.com/smek/action/internal/problem": true,
		"github.com/smek/action/internal/cluster": true,
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p struct {
			ImportPath string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		if !p.Standard && !allowed[p.ImportPath] {
			t.Errorf("internal/client depends on %s; only the standard library, wire, problem and cluster are allowed", p.ImportPath)
		}
	}
	if n < 10 {
		t.Fatalf("go list reported %d packages; the check would not catch anything", n)
	}
}
