package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
)

// runPolicy runs 'provisioner policy ARGS' with SMEK_DATA_DIR set to dir.
func runPolicy(t *testing.T, dir string, extraEnv map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	envs := map[string]string{"SMEK_DATA_DIR": dir}
	for k, v := range extraEnv {
		envs[k] = v
	}
	var out, errOut bytes.Buffer
	err = cmdPolicy(context.Background(), args, func(k string) string { return envs[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPolicyAddListRemove(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runPolicy(t, dir, nil, "add", "--account", "octo", "--repository-owner-id", "65", "--repository-id", "74",
		"--ref", "refs/heads/**", "--environment", "prod", "--event", "push", "--allow-privileged")
	if err != nil {
		t.Fatalf("policy add: %v", err)
	}
	want := `added policy 1: tokens of https://token.actions.githubusercontent.com from owner 65, repository 74, ref refs/heads/**, environment "prod", event push act as account "octo" and may create privileged clusters` + "\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	// The issuer defaults from SMEK_OIDC_ISSUER, shared with 'serve'.
	if _, _, err := runPolicy(t, dir, map[string]string{"SMEK_OIDC_ISSUER": "https://gitlab.com"},
		"add", "--account", "gl", "--repository-owner-id", "7"); err != nil {
		t.Fatalf("policy add for GitLab: %v", err)
	}

	out, _, err = runPolicy(t, dir, nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("got\n%s\nwant a header and two policies", out)
	}
	for i, want := range [][]string{
		{"1", "octo", "65", "74", "refs/heads/**", "prod", "push", "true", auth.GitHubIssuer},
		{"2", "gl", "7", "*", "*", "*", "*", "false", "https://gitlab.com"},
	} {
		if got := strings.Fields(lines[i+1]); len(got) != len(want)+1 || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("row %d: got %q, want %q and the creation time", i+1, got, want)
		}
	}

	out, _, err = runPolicy(t, dir, nil, "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(listed) != 2 || listed[0]["repository-owner-id"] != 65.0 || listed[0]["allow-privileged"] != true ||
		listed[1]["issuer"] != "https://gitlab.com" || listed[1]["repository-id"] != nil {
		t.Errorf("got %v, want both policies with hyphenated keys", listed)
	}

	if out, _, err = runPolicy(t, dir, nil, "remove", "1"); err != nil || out != "removed policy 1\n" {
		t.Fatalf("remove: got %q, %v", out, err)
	}
	_, _, err = runPolicy(t, dir, nil, "remove", "1")
	if cluster.ErrorCode(err) != cluster.ENOTFOUND {
		t.Errorf("removing twice: got %v, want not found", err)
	}
	out, _, _ = runPolicy(t, dir, nil, "list", "--json")
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 {
		t.Errorf("after remove: got %s, want one policy", out)
	}
}

func TestPolicyAddRefusesBadInput(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		field string // the cluster.Error field; "" for a usage error, "-" for a flag error
	}{
		{"no account", []string{"--repository-owner-id", "65"}, "account"},
		{"no owner", []string{"--account", "a"}, "repository-owner-id"},
		{"owner by name", []string{"--account", "a", "--repository-owner-id", "octo-org"}, "-"},
		{"bad glob", []string{"--account", "a", "--repository-owner-id", "65", "--ref", "refs/heads/["}, "ref"},
		{"bad event", []string{"--account", "a", "--repository-owner-id", "65", "--event", "Pull Request"}, "event"},
		{"bad issuer", []string{"--account", "a", "--repository-owner-id", "65", "--oidc-issuer", "github"}, "issuer"},
		{"stray argument", []string{"--account", "a", "--repository-owner-id", "65", "extra"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, _, err := runPolicy(t, dir, nil, append([]string{"add"}, tc.args...)...)
			if err == nil {
				t.Fatal("got no error")
			}
			switch {
			case tc.field == "-":
				if !strings.Contains(err.Error(), "-repository-owner-id") {
					t.Errorf("got %v, want it to name the flag", err)
				}
			case tc.field == "":
				if exitCode(err) != 2 {
					t.Errorf("got %v (exit %d), want a usage error", err, exitCode(err))
				}
			default:
				if e, ok := errors.AsType[*cluster.Error](err); !ok || e.Code != cluster.EINVALID || e.Field != tc.field {
					t.Errorf("got %v, want EINVALID naming %s", err, tc.field)
				}
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused policy created the data folder (%v)", err)
			}
		})
	}
}

func TestPolicyAddConflict(t *testing.T) {
	dir := t.TempDir()
	args := []string{"add", "--account", "a", "--repository-owner-id", "65"}
	if _, _, err := runPolicy(t, dir, nil, args...); err != nil {
		t.Fatal(err)
	}
	_, _, err := runPolicy(t, dir, nil, args...)
	if cluster.ErrorCode(err) != cluster.ECONFLICT {
		t.Errorf("got %v, want a conflict", err)
	}
}

func TestPolicyUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{nil, {"frobnicate"}, {"remove"}, {"remove", "1", "2"}} {
		if _, _, err := runPolicy(t, dir, nil, args...); !errors.Is(err, errUsage) {
			t.Errorf("policy %q: got %v, want a usage error", args, err)
		}
	}
	_, _, err := runPolicy(t, dir, nil, "remove", "one")
	if cluster.ErrorCode(err) != cluster.EINVALID {
		t.Errorf("remove one: got %v, want EINVALID", err)
	}
	_, stderr, err := runPolicy(t, dir, nil, "add", "--help")
	if exitCode(err) != 0 || !strings.Contains(stderr, "most specific wins") {
		t.Errorf("add --help: got %v and\n%s\nwant the matching rules", err, stderr)
	}
}
