package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/smek/action/internal/cost"
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
	err := poolStatusAt(context.Background(), nil, env(map[string]string{"SMEK_DATA_DIR": dir}), &out, &errOut, clockwork.NewFakeClockAt(statusNow))
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	// The members have been in their states since long before the
	// window: 24 hours each (the deleted one costs nothing), at the
	// built-in price of 1-mid's ccx33, €0.0769 an hour.
	want := "Targets of the local server, recorded 2026-12-02 08:00:00 UTC (at its start and at each change).\n" +
		"FLAVOR                   TARGET  READY  BOOTING  REBUILDING  IN USE  FAILED  \n" +
		"1.27.4/1-mid/baseline    3       1      1        1           1       0       \n" +
		"1.27.4/1-mid/privileged  0       0      0        0           0       1       \n" +
		"\n" +
		"Server hours and cost of the last 24 hours (2026-12-02 08:00 to 08:00 UTC, euros without VAT at built-in list prices):\n" +
		"FLAVOR                   BUSY H  IDLE H  STOPPED H  BUILDING H  HIBERNATED H  IDLE/BUSY  EUR   \n" +
		"1.27.4/1-mid/baseline    24.00   24.00   0.00       48.00       0.00          1.00       7.38  \n" +
		"1.27.4/1-mid/privileged  0.00    0.00    0.00       24.00       0.00          -          1.85  \n" +
		"TOTAL                                                                                    9.23  \n"
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
	if len(got.Pools) != 1 {
		t.Fatalf("got %+v, want [%+v]", got.Pools, want)
	}
	usage := got.Pools[0].Usage
	got.Pools[0].Usage = flavorUsage{}
	if !reflect.DeepEqual(got.Pools[0], want) {
		t.Errorf("got %+v, want [%+v]", got.Pools, want)
	}
	// Two members ready all day: 48 idle hours at ccx33's built-in
	// €0.0769, and no idle overhead since nothing was busy.
	if usage.IdleHours != 48 || usage.BusyHours != 0 || usage.IdleOverhead != nil || math.Abs(usage.CostEUR-48*0.0769) > 1e-9 ||
		math.Abs(usage.CostByCategory[cost.Idle]-48*0.0769) > 1e-9 {
		t.Errorf("last 24 h: got %+v", usage)
	}
	for _, key := range []string{`"last-24h": {`, `"idle-overhead": null`, `"cost-eur-by-category": {`, `"prices": "built-in list prices"`, `"usage-from": "`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, out.String())
		}
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
	if err := poolStatusAt(context.Background(), []string{"--json", "--data-dir", dir}, env(nil), &out, &bytes.Buffer{}, clockwork.NewFakeClockAt(statusNow)); err != nil || strings.TrimSpace(out.String()) != `{
  "targets-recorded": false,
  "usage-from": "2026-12-02T08:00:00Z",
  "usage-to": "2026-12-03T08:00:00Z",
  "prices": "built-in list prices",
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
		{"bad price", []string{"status", "--data-dir", dir, "--price", "ccx33"}, "--price"},
		{"negative snapshot price", []string{"status", "--data-dir", dir, "--snapshot-price", "-1"}, "--snapshot-price"},
		{"bad price in the environment", []string{"status", "--data-dir", dir, "--json"}, "SMEK_PRICE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errOut bytes.Buffer
			err := cmdPool(context.Background(), tt.args, env(map[string]string{"SMEK_PRICE": badEnvPrice[tt.name]}), &bytes.Buffer{}, &errOut)
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

// badEnvPrice is the environment of the test case that sets a bad price
// there.
var badEnvPrice = map[string]string{"bad price in the environment": "ccx33=lots"}

// statusNow is the time `pool status` runs at in the tests.
var statusNow = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

// TestPoolStatusCost accounts a crafted history over the last 24 hours: a
// member ready, busy, rebuilt and ready again, and one created and deleted
// within ten minutes (billed a full hour, the rest of it idle), priced at
// the prices the server recorded, or the command's --price.
func TestPoolStatusCost(t *testing.T) {
	at := func(ago time.Duration) int64 { return statusNow.Add(-ago).UnixMilli() }
	ev := func(subject string, ago time.Duration, from, to string) string {
		return fmt.Sprintf("INSERT INTO events (time, subject, type, from_state, to_state, cause) VALUES (%d, '%s', '%s', '%s', '%s', 'pool')",
			at(ago), subject, to, from, to)
	}
	server := func(id, state string, created, updated time.Duration) string {
		return fmt.Sprintf("INSERT INTO servers (id, backend, k8s_version, size, privileged, state, created_at, updated_at) VALUES ('%s', 'hetzner', '1.36.3', '1-mid', 0, '%s', %d, %d)",
			id, state, at(created), at(updated))
	}
	dir := opsDB(t,
		server("m1", "ready", 30*time.Hour, 7*time.Hour),
		ev("m1", 30*time.Hour, "", "creating"), ev("m1", 30*time.Hour, "creating", "ready"),
		ev("m1", 20*time.Hour, "ready", "claimed"), ev("m1", 8*time.Hour, "claimed", "dirty"),
		ev("m1", 8*time.Hour, "dirty", "rebuilding"), ev("m1", 7*time.Hour, "rebuilding", "ready"),
		server("m2", "deleted", 2*time.Hour, 110*time.Minute),
		ev("m2", 2*time.Hour, "", "creating"), ev("m2", 115*time.Minute, "creating", "ready"), ev("m2", 110*time.Minute, "ready", "deleted"),
		fmt.Sprintf(`INSERT INTO cost_model (id, model, source, recorded_at) VALUES (1, '{"hourly": {"ccx33": 0.2}, "snapshot-gb-month": 0.01, "server-types": {"1-mid": "ccx33"}}', 'Hetzner /pricing at fsn1', %d)`, at(time.Hour)),
	)
	status := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := poolStatusAt(context.Background(), append([]string{"--data-dir", dir}, args...), env(nil), &out, &errOut, clockwork.NewFakeClockAt(statusNow)); err != nil {
			t.Fatalf("%v\n%s", err, errOut.String())
		}
		return out.String()
	}
	// m1: idle 4 h, busy 12 h, rebuilding 1 h, idle 7 h; m2: creating
	// 5 min, ready 5 min, then 50 min of its paid hour: 25 hours.
	want := "FLAVOR                 BUSY H  IDLE H  STOPPED H  BUILDING H  HIBERNATED H  IDLE/BUSY  EUR   \n" +
		"1.36.3/1-mid/baseline  12.00   11.92   0.00       1.08        0.00          0.99       5.00  \n"
	got := status()
	if !strings.Contains(got, want) || !strings.Contains(got, "at Hetzner /pricing at fsn1)") {
		t.Errorf("at the recorded prices: got:\n%s\nwant it to contain:\n%s", got, want)
	}
	got = status("--price", "ccx33=0.1")
	if !strings.Contains(got, "0.99       2.50  \n") || !strings.Contains(got, "at Hetzner /pricing at fsn1 + --price)") {
		t.Errorf("at --price ccx33=0.1: got:\n%s", got)
	}
	var js struct {
		Pools []poolStatus `json:"pools"`
	}
	if err := json.Unmarshal([]byte(status("--json")), &js); err != nil || len(js.Pools) != 1 {
		t.Fatalf("JSON: %v %+v", err, js)
	}
	u := js.Pools[0].Usage
	if u.BusyHours != 12 || math.Abs(u.IdleHours-(11+55.0/60)) > 1e-9 || math.Abs(u.BuildingHours-(1+5.0/60)) > 1e-9 ||
		u.IdleOverhead == nil || math.Abs(*u.IdleOverhead-(11+55.0/60)/12) > 1e-9 || math.Abs(u.CostEUR-5) > 1e-9 {
		t.Errorf("JSON: got %+v", u)
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
