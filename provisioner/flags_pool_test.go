package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

// parsePoolFlags parses serve's pool policy flags from args and env.
func parsePoolFlags(t *testing.T, backend string, args []string, env map[string]string) (poolPolicyFlags, map[string]bool, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int("pool-size", 2, "")
	var pf poolPolicyFlags
	pf.register(fs)
	err := parseFlags(fs, args, func(k string) string { return env[k] })
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return pf, given, err
}

func TestPoolPolicyFlags(t *testing.T) {
	priv := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	pf, given, err := parsePoolFlags(t, "hetzner", []string{
		"--pool-min", "1", "--pool-min", "1.36.3/1-mid/privileged=2", "--pool-max", "4,1.36.3/1-mid/privileged=3",
		"--pool-service-level", "0.995",
	}, map[string]string{
		"SMEK_POOL_SCHEDULE":    "min=2,cron=0 20 * * *,for=1h;min=1,cron=@daily,for=30m",
		"SMEK_POOL_READY_PRIOR": "90s",
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pf.config("hetzner", given)
	if err != nil {
		t.Fatal(err)
	}
	if c.PolicyName("hetzner") != "auto" || c.Min[cluster.Flavor{}] != 1 || c.Min[priv] != 2 || c.Max[cluster.Flavor{}] != 4 || c.Max[priv] != 3 {
		t.Errorf("config %+v", c)
	}
	if c.ServiceLevel != 0.995 || c.ReadyPrior != 90*time.Second || len(c.Schedules) != 2 || c.Schedules[1].Name != "@daily" {
		t.Errorf("config %+v", c)
	}
	minPrinted := pf.min.String()
	// The command line wins over the environment, as for every flag.
	pf, given, err = parsePoolFlags(t, "local", []string{"--pool-policy", "auto", "--pool-schedule", "min=3,cron=0 8 * * 1-5,for=10h,name=day"},
		map[string]string{"SMEK_POOL_SCHEDULE": "min=2,cron=0 20 * * *,for=1h"})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := pf.config("local", given); err != nil || len(c.Schedules) != 1 || c.Schedules[0].Name != "day" {
		t.Errorf("schedules %+v, %v: want the command line's one", c.Schedules, err)
	}
	if got := minPrinted; got != "1,1.36.3/1-mid/privileged=2" {
		t.Errorf("--pool-min prints %q", got)
	}
}

func TestPoolPolicyFlagsRefuse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend string
		args    []string
		env     map[string]string
		want    string
	}{
		{"unknown policy", "local", []string{"--pool-policy", "magic"}, nil, "--pool-policy"},
		{"auto flag with fixed", "local", []string{"--pool-min", "1"}, nil, "--pool-min sizes the auto policy"},
		{"schedule with fixed", "hetzner", []string{"--pool-policy", "fixed", "--pool-schedule", "min=1,cron=0 8 * * *,for=1h"}, nil, "--pool-schedule"},
		{"pool size with auto", "hetzner", []string{"--pool-size", "3"}, nil, "--pool-size sizes the fixed policy"},
		{"pool size from env with auto", "local", []string{"--pool-policy", "auto"}, map[string]string{"SMEK_POOL_SIZE": "3"}, "--pool-size"},
		{"min above max", "hetzner", []string{"--pool-min", "5", "--pool-max", "4"}, nil, "--pool-min (default flavor)=5 is above --pool-max 4"},
		{"max 0", "hetzner", []string{"--pool-max", "0"}, nil, "--pool-max (default flavor)=0"},
		{"negative min", "hetzner", []string{"--pool-min", "-1"}, nil, "--pool-min"},
		{"bad flavor", "hetzner", []string{"--pool-min", "1.36/1-mid/baseline=1"}, nil, "--pool-min"},
		{"twice", "hetzner", []string{"--pool-min", "1", "--pool-min", "2"}, nil, "given twice"},
		{"service level 1", "hetzner", []string{"--pool-service-level", "1"}, nil, "--pool-service-level"},
		{"ready prior 0", "hetzner", []string{"--pool-ready-prior", "0s"}, nil, "--pool-ready-prior"},
		{"bad schedule", "hetzner", []string{"--pool-schedule", "min=1,cron=0 8 * *,for=1h"}, nil, "--pool-schedule"},
		{"bad schedule from env", "hetzner", nil, map[string]string{"SMEK_POOL_SCHEDULE": "min=1"}, "SMEK_POOL_SCHEDULE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf, given, err := parsePoolFlags(t, tc.backend, tc.args, tc.env)
			if err == nil {
				_, err = pf.config(tc.backend, given)
			}
			if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a usage error with %q", err, tc.want)
			}
		})
	}
}

func FuzzFlavorCounts(f *testing.F) {
	for _, s := range []string{"1", "1.36.3/1-mid/privileged=2", "4,1.36.3/1-mid/baseline=3", "=", ",,", "1.36.3/1-mid/baseline=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := flavorCounts{flag: "pool-min"}
		if err := c.Set(s); err != nil {
			if !strings.Contains(err.Error(), "pool-min") {
				t.Fatalf("error %q does not name the flag", err)
			}
			return
		}
		// What was accepted prints back to something that parses the same.
		again := flavorCounts{flag: "pool-min"}
		if err := again.Set(c.String()); err != nil || again.String() != c.String() {
			t.Fatalf("%q → %q → %v, %q", s, c.String(), err, again.String())
		}
		for _, n := range c.m {
			if n < 0 || n > maxPoolCount {
				t.Fatalf("accepted %d", n)
			}
		}
	})
}
