package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// simTrace writes a small trace: two creates a minute apart, then one an
// hour later, all from the same CI job.
func simTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.csv")
	csv := "created_at,minutes,repository,workflow,job,queued_at\n" +
		"2026-03-02T09:00:00Z,10,acme/shop,ci,e2e,2026-03-02T08:59:00Z\n" +
		"2026-03-02T09:01:00Z,10,acme/shop,ci,e2e,2026-03-02T09:00:00Z\n" +
		"2026-03-02T10:00:00Z,5,acme/shop,ci,e2e,2026-03-02T09:58:30Z\n"
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPoolSimulateJSON(t *testing.T) {
	trace := simTrace(t)
	stdout, stderr, err := mainRun(t, nil, "pool", "simulate", "--trace", trace, "--policy", "fixed:0", "--policy", "fixed:1+prewarm,auto", "--json", "--create-time", "const:1m",
		"--pool-schedule", "min=1,cron=0 8 * * 1-5,for=10h")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// The shape: one entry per policy, these keys.
	var out struct {
		Policies []map[string]any `json:"policies"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(out.Policies) != 3 {
		t.Fatalf("%d policies, want 3:\n%s", len(out.Policies), stdout)
	}
	for i, name := range []string{"fixed:0", "fixed:1+prewarm", "auto"} {
		p := out.Policies[i]
		if p["policy"] != name {
			t.Errorf("entry %d is %v, want %s", i, p["policy"], name)
		}
		for _, k := range []string{"creates", "warm-ratio", "wait-p50-s", "wait-p95-s", "wait-max-s", "busy-server-hours", "idle-server-hours", "idle-overhead", "cost-eur", "peak-hetzner-requests-per-hour"} {
			if _, ok := p[k].(float64); !ok {
				t.Errorf("%s: %q is %v, want a number", name, k, p[k])
			}
		}
		if p["creates"] != 3.0 {
			t.Errorf("%s: creates %v, want 3", name, p["creates"])
		}
	}
	// fixed:0 waits the create's minute every time.
	if p := out.Policies[0]; p["warm-ratio"] != 0.0 || p["wait-max-s"] != 60.05 {
		t.Errorf("fixed:0: warm ratio %v, wait max %v; want 0 and 60.05", p["warm-ratio"], p["wait-max-s"])
	}
	if p := out.Policies[1]; p["warm-ratio"] != 1.0 {
		t.Errorf("fixed:1+prewarm: warm ratio %v, want 1", p["warm-ratio"])
	}
	// The weekday schedule keeps one ready from 08:00: the first create
	// of the day is warm.
	if p := out.Policies[2]; p["warm-ratio"] != 1.0 {
		t.Errorf("auto with a schedule: warm ratio %v, want 1", p["warm-ratio"])
	}
}

func TestPoolSimulateTable(t *testing.T) {
	stdout, stderr, err := mainRun(t, map[string]string{"SMEK_POLICY": "fixed:1"}, "pool", "simulate", "--trace", simTrace(t), "--seed", "7")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"3 creates from 2026-03-02T09:00:00Z", "seed 7", "POLICY", "IDLE/BUSY", "fixed:1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestPoolSimulateRefuses(t *testing.T) {
	trace := simTrace(t)
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("created_at,minutes\n2026-03-02T09:00:00Z,ten\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--trace is required"},
		{[]string{"--trace", trace, "--policy", "fixed"}, `--policy "fixed"`},
		{[]string{"--trace", trace, "--policy", "fixed:-1"}, "fixed:N wants a whole number"},
		{[]string{"--trace", trace, "--policy", "magic"}, "want fixed:N"},
		{[]string{"--trace", trace, "--create-time", "55s"}, "create-time"},
		{[]string{"--trace", trace, "--pool-min", "5", "--pool-max", "2"}, "--pool-min 5, --pool-max 2"},
		{[]string{"--trace", trace, "--provision-parallel", "0"}, "--provision-parallel"},
		{[]string{"--trace", trace, "--price", "ccx33=abc"}, "--price"},
		{[]string{"--trace", trace, "--flavor", "1.36.3"}, "--flavor"},
		{[]string{"--trace", trace, "--prewarm-ttl", "0s"}, "--prewarm-ttl"},
		{[]string{"--trace", trace, "--prewarm-cap", "0"}, "--prewarm-cap"},
		{[]string{"--trace", trace, "--pool-schedule", "min=2"}, "--pool-schedule"},
		{[]string{"--trace", filepath.Join(t.TempDir(), "missing.csv")}, "--trace"},
		{[]string{"--trace", bad}, "line 2, column minutes"},
	} {
		_, _, err := mainRun(t, nil, append([]string{"pool", "simulate"}, c.args...)...)
		if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v (exit %d), want a usage error with %q", c.args, err, exitCodeOf(err), c.want)
		}
	}
}

func FuzzParseSimPolicy(f *testing.F) {
	for _, s := range []string{"fixed:2", "fixed:0+prewarm", "auto", "auto+prewarm", "fixed:", "auto+prewarm+prewarm"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseSimPolicy(s)
		if err != nil {
			return
		}
		if p.name != s || p.size < 0 || p.size > maxFixedPool || p.auto && p.size != 0 {
			t.Fatalf("parseSimPolicy(%q) = %+v", s, p)
		}
		again, err := parseSimPolicy(s)
		if err != nil || again != p {
			t.Fatalf("not stable: %+v, %v", again, err)
		}
	})
}
