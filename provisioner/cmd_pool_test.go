package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smek/action/internal/sqlite"
)

// opsDB creates a SMEK database in a temporary data folder, fills it with
// the given SQL statements and returns the folder.
func opsDB(t *testing.T, statements ...string) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team-a", "team-b"} {
		if _, err := db.EnsureAccount(context.Background(), name, sqlite.AccountLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range statements {
		if _, err := raw.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return dir
}

func poolServerRow(id, version string, priv int, state string) string {
	return "INSERT INTO servers (id, backend, k8s_version, size, privileged, state, created_at, updated_at) VALUES ('" +
		id + "', 'local', '" + version + "', '1-mid', " + string(rune('0'+priv)) + ", '" + state + "', 1, 1)"
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPoolStatus(t *testing.T) {
	dir := opsDB(t, append([]string{
		poolServerRow("s1", "1.27.4", 0, "ready"), poolServerRow("s2", "1.27.4", 0, "bootstrapping"),
		poolServerRow("s3", "1.27.4", 0, "dirty"), poolServerRow("s4", "1.27.4", 0, "claimed"),
		poolServerRow("s5", "1.27.4", 1, "failed"), poolServerRow("s6", "1.27.4", 0, "deleted"),
	}, targetRows("1.27.4", 3, 0)...)...)
	var out, errOut bytes.Buffer
	err := cmdPool(context.Background(), []string{"status"}, env(map[string]string{"SMEK_DATA_DIR": dir}), &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	want := "Targets of the local server started 2026-12-02 08:00:00 UTC.\n" +
		"FLAVOR                   TARGET  READY  BOOTING  REBUILDING  IN USE  FAILED  \n" +
		"1.27.4/1-mid/baseline    3       1      1        1           1       0       \n" +
		"1.27.4/1-mid/privileged  0       0      0        0           0       1       \n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestPoolStatusJSON(t *testing.T) {
	dir := opsDB(t, append([]string{poolServerRow("s1", "1.27.4", 0, "ready"), poolServerRow("s2", "1.27.4", 0, "ready")},
		targetRows("1.27.4", 4, 0)...)...)
	var out bytes.Buffer
	err := run(context.Background(), []string{"pool", "status", "--json", "--data-dir", dir}, env(nil), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Pools []poolStatus `json:"pools"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	want := poolStatus{Flavor: "1.27.4/1-mid/baseline", K8sVersion: "1.27.4", ClusterSize: "1-mid", Target: 4, Ready: 2}
	if len(got.Pools) != 1 || got.Pools[0] != want {
		t.Errorf("got %+v, want [%+v]", got.Pools, want)
	}
	if !strings.Contains(out.String(), `"in-use": 0`) {
		t.Errorf("want hyphenated field names like the API:\n%s", out.String())
	}
}

func TestPoolStatusEmptyAndErrors(t *testing.T) {
	dir := opsDB(t)
	var out bytes.Buffer
	if err := cmdPool(context.Background(), []string{"status", "--data-dir", dir}, env(nil), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no members") {
		t.Errorf("empty pool: got %q", out.String())
	}
	out.Reset()
	if err := cmdPool(context.Background(), []string{"status", "--json", "--data-dir", dir}, env(nil), &out, &bytes.Buffer{}); err != nil || strings.TrimSpace(out.String()) != `{
  "targets-recorded": false,
  "pools": []
}` {
		t.Errorf("empty pool as JSON: got %q, %v", out.String(), err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "needs a subcommand"},
		{"unknown subcommand", []string{"grow"}, `"grow"`},
		{"bad flag", []string{"status", "--json=many"}, "invalid boolean value"},
		{"a flag of serve", []string{"status", "--pool-size", "3", "--data-dir", dir}, "-pool-size"},
		{"no database", []string{"status", "--data-dir", filepath.Join(dir, "nowhere")}, "no SMEK database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			err := cmdPool(context.Background(), tt.args, env(nil), &bytes.Buffer{}, &errOut)
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Errorf("got %v (stderr %q), want it to mention %q", err, errOut.String(), tt.want)
			}
			if !errors.Is(err, errUsage) {
				t.Errorf("got %v, want a usage error (exit code 2)", err)
			}
		})
	}
}

// targetRows records pool targets as a server started at 2026-12-02
// 08:00 UTC with --pool-size baseline --pool-size-privileged privileged
// would (a target of 0 is not recorded).
func targetRows(version string, baseline, privileged int) []string {
	rows := []string{"INSERT INTO pool_targets_recorded (id, backend, recorded_at) VALUES (1, 'local', 1796198400000)"}
	for priv, n := range []int{baseline, privileged} {
		if n > 0 {
			rows = append(rows, fmt.Sprintf("INSERT INTO pool_targets (k8s_version, size, privileged, target) VALUES ('%s', '1-mid', %d, %d)", version, priv, n))
		}
	}
	return rows
}
