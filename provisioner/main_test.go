package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/smek/action/internal/auth"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/sqlite"
)

// mainRun calls run with the given environment and returns what it wrote.
func mainRun(t *testing.T, environ map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return environ[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

var mainTokenShape = regexp.MustCompile(`^smek_[a-z2-7]{52}\n$`)

// mainPrincipal looks a token up in the database of dir, as the server
// would.
func mainPrincipal(t *testing.T, dir, secret string) (cluster.Principal, error) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.PrincipalByTokenHash(context.Background(), auth.HashToken(secret))
}

func TestTokenCreatePrintsOnlyTheToken(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "me")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !mainTokenShape.MatchString(stdout) {
		t.Fatalf("got stdout %q, want the token alone on one line", stdout)
	}
	secret := strings.TrimSpace(stdout)
	if strings.Contains(stderr, secret[13:]) {
		t.Errorf("stderr %q repeats the secret", stderr)
	}
	if !strings.Contains(stderr, secret[:13]) || !strings.Contains(stderr, "shown once") {
		t.Errorf("stderr %q should name the token's prefix and say it is shown once", stderr)
	}
	p, err := mainPrincipal(t, dir, secret)
	if err != nil {
		t.Fatalf("the printed token does not authenticate: %v", err)
	}
	if p.Account.Name != "me" || p.AllowPrivileged || p.Service ||
		p.Account.MaxClusters != cluster.DefaultMaxClusters || p.Account.MaxMinutesToLive != cluster.DefaultMaxMinutesToLive {
		t.Errorf("got %+v, want account me with the default limits and no privileges", p)
	}
	// A second token for the same account is another token of the same
	// account.
	stdout2, _, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "me")
	if err != nil || stdout2 == stdout {
		t.Fatalf("second token: %q, %v", stdout2, err)
	}
	p2, err := mainPrincipal(t, dir, strings.TrimSpace(stdout2))
	if err != nil || p2.Account.ID != p.Account.ID {
		t.Errorf("second token: got %+v, %v; want account %d", p2.Account, err, p.Account.ID)
	}
}

func TestTokenCreateRightsAndLimits(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "ci",
		"--allow-privileged", "--max-clusters", "3", "--max-minutes-to-live", "90", "--description", "nightly e2e")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	p, err := mainPrincipal(t, dir, strings.TrimSpace(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !p.AllowPrivileged || p.Account.MaxClusters != 3 || p.Account.MaxMinutesToLive != 90 {
		t.Errorf("got %+v, want privileged, 3 clusters, 90 minutes", p)
	}
	if !strings.Contains(stderr, "max 3 clusters") || !strings.Contains(stderr, "max 90 minutes") {
		t.Errorf("stderr %q does not report the limits", stderr)
	}
	// A later token without limit flags keeps the account's limits.
	stdout, _, err = mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := mainPrincipal(t, dir, strings.TrimSpace(stdout)); err != nil || p.Account.MaxClusters != 3 || p.AllowPrivileged {
		t.Errorf("plain token of the same account: got %+v, %v", p, err)
	}
}

func TestTokenCreateRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		// code is the exit code; parse errors of the flag package are
		// not marked as usage errors (yet) and exit 1.
		code int
	}{
		{"no account", nil, []string{"token", "create", "--data-dir", dir}, 2},
		{"negative limit", nil, []string{"token", "create", "--data-dir", dir, "--account", "me", "--max-clusters", "-1"}, 2},
		{"bad environment value", map[string]string{"SMEK_MAX_CLUSTERS": "many"}, []string{"token", "create", "--data-dir", dir, "--account", "me"}, 2},
		{"not a number", nil, []string{"token", "create", "--data-dir", dir, "--account", "me", "--max-clusters", "many"}, 2},
		{"unknown flag", nil, []string{"token", "create", "--data-dir", dir, "--account", "me", "--admin"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := mainRun(t, tt.environ, tt.args...)
			if err == nil || exitCode(err) != tt.code {
				t.Errorf("got %v (exit %d), want an error with exit code %d", err, exitCodeOf(err), tt.code)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing: no token may be printed", stdout)
			}
		})
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "smek.db"))
	if err == nil {
		defer db.Close()
		if ts, _ := db.Tokens(context.Background()); len(ts) != 0 {
			t.Errorf("refused creates stored %d tokens", len(ts))
		}
	}
}

func TestTokenListNeverPrintsSecrets(t *testing.T) {
	dir := t.TempDir()
	var secrets []string
	for _, account := range []string{"alpha", "beta"} {
		stdout, _, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", account, "--description", "for "+account)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, strings.TrimSpace(stdout))
	}
	for _, format := range [][]string{nil, {"--json"}} {
		stdout, _, err := mainRun(t, nil, append([]string{"token", "list", "--data-dir", dir}, format...)...)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range secrets {
			if !strings.Contains(stdout, s[:13]) {
				t.Errorf("list %v does not show prefix %s", format, s[:13])
			}
			hash := auth.HashToken(s)
			for _, leak := range []string{s[13:], s[13:30], hex.EncodeToString(hash), string(mustJSON(t, hash))} {
				if strings.Contains(stdout, leak) {
					t.Errorf("list %v prints secret material of token %d", format, i)
				}
			}
		}
		if !strings.Contains(stdout, "alpha") || !strings.Contains(stdout, "for beta") {
			t.Errorf("list %v lacks accounts or descriptions:\n%s", format, stdout)
		}
	}
	stdout, _, _ := mainRun(t, nil, "token", "list", "--data-dir", dir, "--json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil || len(listed) != 2 {
		t.Errorf("--json: got %d tokens (%v) from %q", len(listed), err, stdout)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Trim(b, `"`)
}

func TestTokenRevoke(t *testing.T) {
	dir := t.TempDir()
	environ := map[string]string{"SMEK_DATA_DIR": dir}
	stdout, _, err := mainRun(t, environ, "token", "create", "--account", "me")
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(stdout)
	stdout, _, err = mainRun(t, environ, "token", "create", "--account", "me")
	if err != nil {
		t.Fatal(err)
	}
	other := strings.TrimSpace(stdout)

	stdout, stderr, err := mainRun(t, environ, "token", "revoke", secret[:13])
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "revoked "+secret[:13]) {
		t.Errorf("got %q", stdout)
	}
	_, err = mainPrincipal(t, dir, secret)
	if cluster.ErrorCode(err) != cluster.EUNAUTHORIZED {
		t.Errorf("revoked token: got %v, want unauthorized", err)
	}
	if _, err := mainPrincipal(t, dir, other); err != nil {
		t.Errorf("the other token stopped working: %v", err)
	}
	list, _, _ := mainRun(t, environ, "token", "list")
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, secret[:13]) && strings.Contains(line, " - ") {
			t.Errorf("the revoked token is listed without a revocation time: %q", line)
		}
	}

	// Revoking again, or something unknown, fails with exit code 1; a
	// missing argument is a usage error.
	for _, arg := range []string{secret[:13], "smek_nosuchone"} {
		if _, _, err := mainRun(t, environ, "token", "revoke", arg); cluster.ErrorCode(err) != cluster.ENOTFOUND || exitCode(err) != 1 {
			t.Errorf("revoke %q: got %v (exit %d), want not-found (exit 1)", arg, err, exitCode(err))
		}
	}
	if _, _, err := mainRun(t, environ, "token", "revoke"); exitCode(err) != 2 {
		t.Errorf("revoke without argument: got %v (exit %d), want exit 2", err, exitCode(err))
	}
}

// SMEK_DATA_DIR is honoured, and a flag on the command line wins over it.
func TestDataDirFromEnvironment(t *testing.T) {
	fromEnv, fromFlag := t.TempDir(), t.TempDir()
	environ := map[string]string{"SMEK_DATA_DIR": fromEnv}
	stdout, _, err := mainRun(t, environ, "token", "create", "--account", "env")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mainPrincipal(t, fromEnv, strings.TrimSpace(stdout)); err != nil {
		t.Errorf("token not stored in $SMEK_DATA_DIR: %v", err)
	}
	stdout, _, err = mainRun(t, environ, "token", "create", "--account", "flag", "--data-dir", fromFlag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mainPrincipal(t, fromFlag, strings.TrimSpace(stdout)); err != nil {
		t.Errorf("token not stored in --data-dir: %v", err)
	}
	if _, err := mainPrincipal(t, fromEnv, strings.TrimSpace(stdout)); err == nil {
		t.Error("--data-dir did not win over SMEK_DATA_DIR")
	}
	// The other flags read the environment too.
	environ["SMEK_ALLOW_PRIVILEGED"] = "true"
	environ["SMEK_MAX_MINUTES_TO_LIVE"] = "30"
	stdout, _, err = mainRun(t, environ, "token", "create", "--account", "envpriv")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := mainPrincipal(t, fromEnv, strings.TrimSpace(stdout)); err != nil || !p.AllowPrivileged || p.Account.MaxMinutesToLive != 30 {
		t.Errorf("got %+v, %v; want privileged and 30 minutes from the environment", p, err)
	}
}

// A token can be created while the server holds the database open.
func TestTokenCreateWhileServerRuns(t *testing.T) {
	dir := t.TempDir()
	server, err := sqlite.Open(context.Background(), filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	stdout, stderr, err := mainRun(t, nil, "token", "create", "--data-dir", dir, "--account", "me")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if _, err := server.PrincipalByTokenHash(context.Background(), auth.HashToken(strings.TrimSpace(stdout))); err != nil {
		t.Errorf("the running server does not see the new token: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"token without subcommand", []string{"token"}, 2},
		{"unknown token subcommand", []string{"token", "frobnicate"}, 2},
		{"help", []string{"help"}, 0},
		{"--help", []string{"--help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := mainRun(t, nil, tt.args...)
			if got := exitCodeOf(err); got != tt.code {
				t.Errorf("got exit %d (%v), want %d", got, err, tt.code)
			}
			if tt.code != 0 && !strings.Contains(stderr, "Usage") && !strings.Contains(err.Error(), "create, list, revoke") {
				t.Errorf("neither usage nor the choices shown: stderr %q, error %v", stderr, err)
			}
			if tt.code == 0 && !strings.Contains(stdout, "provisioner serve") {
				t.Errorf("help goes to stdout; got %q", stdout)
			}
		})
	}
	_, stderr, err := mainRun(t, nil, "frobnicate")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `"frobnicate"`) || !strings.Contains(stderr, "Usage:") {
		t.Errorf("unknown command: got %v and %q", err, stderr)
	}
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// mustServeFlags are the flags issue 2 asks `provisioner serve` for.
var mustServeFlags = []string{"addr", "data-dir", "backend", "pool-size", "kube-bin"}

// serveFlags lists the flags `provisioner serve --help` prints.
func serveFlags(t *testing.T) (names []string, help string) {
	t.Helper()
	stdout, stderr, err := mainRun(t, nil, "serve", "--help")
	if !errors.Is(err, flag.ErrHelp) || exitCode(err) != 0 {
		t.Fatalf("serve --help: got %v (exit %d), want flag.ErrHelp and exit 0", err, exitCode(err))
	}
	if stdout != "" {
		t.Errorf("serve --help wrote %q to stdout", stdout)
	}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(stderr, -1) {
		names = append(names, m[1])
	}
	return names, stderr
}

func TestServeHelpListsEveryFlag(t *testing.T) {
	names, help := serveFlags(t)
	for _, want := range mustServeFlags {
		if !slices.Contains(names, want) {
			t.Errorf("serve --help does not list --%s:\n%s", want, help)
		}
	}
	if !strings.Contains(help, "SMEK_DATA_DIR") {
		t.Errorf("serve --help does not say flags can be set as SMEK_* variables")
	}
	for _, want := range []string{`(default "127.0.0.1:8080")`, `(default "./data")`, `(default "local")`, `(default 2)`} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %s", want)
		}
	}
}

// The README's configuration reference names every flag of `provisioner
// serve` with its environment variable, so that the two cannot drift apart.
func TestReadmeDocumentsServeFlags(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	names, _ := serveFlags(t)
	for _, name := range names {
		env := "SMEK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if !bytes.Contains(readme, []byte("`--"+name+"`")) || !bytes.Contains(readme, []byte("`"+env+"`")) {
			t.Errorf("README.md does not document `--%s` / `%s`", name, env)
		}
	}
}

// A bad value in the environment is reported with the variable's name
// before anything starts.
func TestServeRefusesBadEnvironment(t *testing.T) {
	for env, val := range map[string]string{"SMEK_POOL_SIZE": "two", "SMEK_DEFAULT_WAIT": "5 minutes", "SMEK_LOG_LEVEL": "loud"} {
		_, _, err := mainRun(t, map[string]string{env: val, "SMEK_DATA_DIR": t.TempDir()}, "serve")
		if exitCodeOf(err) != 2 {
			t.Errorf("%s=%q: got %v (exit %d), want a usage error", env, val, err, exitCodeOf(err))
		}
		if env != "SMEK_LOG_LEVEL" && (err == nil || !strings.Contains(err.Error(), env)) {
			t.Errorf("%s=%q: the error %v does not name the variable", env, val, err)
		}
	}
	if _, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--pool-size", "-1"); exitCodeOf(err) != 2 {
		t.Errorf("negative pool size: got %v, want a usage error", err)
	}
}

// A short or unreadable ops token file is a usage error before anything
// starts.
func TestServeRefusesBadOpsToken(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{short, filepath.Join(t.TempDir(), "missing")} {
		_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--ops-token-file", path)
		if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--ops-token-file") {
			t.Errorf("%s: got %v (exit %d), want a usage error naming --ops-token-file", path, err, exitCodeOf(err))
		}
	}
}
