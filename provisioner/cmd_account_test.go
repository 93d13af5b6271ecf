package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
)

func TestCmdAccount(t *testing.T) {
	dir := t.TempDir()
	getenv := func(k string) string {
		if k == "SMEK_DATA_DIR" {
			return dir
		}
		return ""
	}
	ctx := t.Context()
	account := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cmdAccount(ctx, args, getenv, &out, io.Discard)
		return out.String(), err
	}
	// Accounts come from token create.
	for _, name := range []string{"acme", "umbrella"} {
		if err := cmdToken(ctx, []string{"create", "--account", name}, getenv, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := account("link", "--account", "acme"); !errors.Is(err, errUsage) {
		t.Fatalf("link without an id: got %v, want a usage error", err)
	}
	if _, err := account("link", "--account", "nobody", "--github-installation-id", "5"); cluster.ErrorCode(err) != cluster.ENOTFOUND ||
		!strings.Contains(err.Error(), "token create --account nobody") {
		t.Fatalf("unknown account: got %v, want ENOTFOUND with a hint", err)
	}
	out, err := account("link", "--account", "acme", "--github-installation-id", "42")
	if err != nil || !strings.Contains(out, `installation 42 to account "acme"`) {
		t.Fatalf("link: got %q, %v", out, err)
	}
	if _, err := account("link", "--account", "umbrella", "--github-installation-id", "42"); cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Fatalf("second account on the same installation: got %v, want ECONFLICT", err)
	}

	out, err = account("list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "acme") || !strings.HasSuffix(lines[1], "42") || !strings.HasSuffix(lines[2], "-") {
		t.Fatalf("list:\n%s", out)
	}
	out, err = account("list", "--json")
	var got []accountJSON
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || len(got) != 2 || got[0].GitHubInstallationID != 42 {
		t.Fatalf("list --json: got %s, %v", out, err)
	}

	if _, err := account("unlink", "--account", "acme"); err != nil {
		t.Fatal(err)
	}
	if out, _ := account("list"); strings.Contains(out, "42") {
		t.Fatalf("list after unlink:\n%s", out)
	}
	if _, err := account("rename"); !errors.Is(err, errUsage) {
		t.Fatalf("unknown subcommand: got %v, want a usage error", err)
	}
}
