package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// accountLimits reads an account's limits as 'account list --json' prints
// them.
func accountLimits(t *testing.T, dir, name string) map[string]any {
	t.Helper()
	stdout, stderr, err := mainRun(t, nil, "account", "list", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatalf("account list: %v\n%s", err, stderr)
	}
	var as []map[string]any
	if err := json.Unmarshal([]byte(stdout), &as); err != nil {
		t.Fatalf("account list --json: %v\n%s", err, stdout)
	}
	for _, a := range as {
		if a["name"] == name {
			return a
		}
	}
	t.Fatalf("account list has no %q: %s", name, stdout)
	return nil
}

// Issue 12: --max-clusters 0 used to mean "the default" (5). It suspends
// the account now, and says so.
func TestTokenCreateMaxClustersZeroSuspends(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "paused", "--max-clusters", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	p, err := mainPrincipal(t, dir, strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if p.Account.MaxClusters != 0 {
		t.Errorf("--max-clusters 0: the account may run %d clusters, want 0 (suspended)", p.Account.MaxClusters)
	}
	if !strings.Contains(stderr, "suspended") {
		t.Errorf("stderr %q does not say the account is suspended", stderr)
	}
}

// --max-stopped-clusters sets the account's limit of stopped clusters; 0
// means none may be kept. A new account may keep 5.
func TestTokenCreateMaxStoppedClusters(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "fresh"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got := accountLimits(t, dir, "fresh")["max-stopped-clusters"]; got != 5.0 {
		t.Errorf("new account: max-stopped-clusters %v, want 5", got)
	}
	_, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "nokeep", "--max-stopped-clusters", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got := accountLimits(t, dir, "nokeep")["max-stopped-clusters"]; got != 0.0 {
		t.Errorf("--max-stopped-clusters 0: got %v, want 0", got)
	}
	if !strings.Contains(stderr, "max 0 stopped clusters") {
		t.Errorf("stderr %q does not report the stopped limit", stderr)
	}
}

// Bad limits are refused before anything is stored, with the flag named:
// negative ones by the flag parser, and a maximum minutes-to-live of 0
// because no cluster can live 0 minutes.
func TestTokenCreateRefusesBadLimits(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		want    string // in the error
	}{
		{"negative max-clusters", nil, []string{"--max-clusters", "-1"}, "-max-clusters"},
		{"negative max-minutes-to-live", nil, []string{"--max-minutes-to-live", "-5"}, "-max-minutes-to-live"},
		{"zero max-minutes-to-live", nil, []string{"--max-minutes-to-live", "0"}, "-max-minutes-to-live"},
		{"negative max-stopped-clusters", nil, []string{"--max-stopped-clusters", "-2"}, "-max-stopped-clusters"},
		{"negative in the environment", map[string]string{"SMEK_MAX_STOPPED_CLUSTERS": "-1"}, nil, "SMEK_MAX_STOPPED_CLUSTERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"token", "create", "--data-dir", dir, "--account", "me"}, tt.args...)
			stdout, _, err := mainRun(t, tt.environ, args...)
			if exitCodeOf(err) != 2 {
				t.Fatalf("got %v (exit %d), want a usage error (exit 2)", err, exitCodeOf(err))
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "not defined") {
				t.Errorf("error %q does not name %s and what is wrong", msg, tt.want)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want no token", stdout)
			}
		})
	}
}

// token create for an existing account changes the limits it is given,
// for every token of the account, and says what changed; limits it is not
// given stay as they are.
func TestTokenCreateUpdatesAnExistingAccount(t *testing.T) {
	dir := t.TempDir()
	first, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "ci", "--max-clusters", "3", "--max-stopped-clusters", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "changed") {
		t.Errorf("a new account reports a change: %q", stderr)
	}
	_, stderr, err = mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "ci", "--max-clusters", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "max-clusters changed from 3 to 0") || !strings.Contains(stderr, "suspended") {
		t.Errorf("stderr %q does not say that max-clusters went from 3 to 0 (suspended)", stderr)
	}
	p, err := mainPrincipal(t, dir, strings.TrimSpace(first))
	if err != nil {
		t.Fatal(err)
	}
	if p.Account.MaxClusters != 0 {
		t.Errorf("the first token's account may run %d clusters, want 0", p.Account.MaxClusters)
	}
	if got := accountLimits(t, dir, "ci")["max-stopped-clusters"]; got != 2.0 {
		t.Errorf("max-stopped-clusters not given: got %v, want 2 kept", got)
	}
	// The same value again is no change.
	_, stderr, err = mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "ci", "--max-clusters", "0")
	if err != nil || strings.Contains(stderr, "changed") {
		t.Errorf("same limit again: %v, stderr %q; want no change reported", err, stderr)
	}
}
