package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/server"
)

// Bad pre-warm flags, on the command line or in the environment, are
// usage errors that name the flag, before the server starts.
func TestServeRefusesBadPrewarmFlags(t *testing.T) {
	for _, tt := range []struct {
		flag string
		args []string
		env  map[string]string
	}{
		{"--prewarm-ttl", []string{"--prewarm-ttl", "0s"}, nil},
		{"--prewarm-ttl", []string{"--prewarm-ttl", "-5m"}, nil},
		{"--prewarm-ttl", []string{"--prewarm-ttl", "25h"}, nil},
		{"prewarm-ttl", []string{"--prewarm-ttl", "soon"}, nil},
		{"--prewarm-cap", []string{"--prewarm-cap", "0"}, nil},
		{"--prewarm-cap", nil, map[string]string{"SMEK_PREWARM_CAP": "1001"}},
		{"--github-prewarm", []string{"--github-prewarm"}, nil},
	} {
		env := map[string]string{"SMEK_DATA_DIR": t.TempDir()}
		for k, v := range tt.env {
			env[k] = v
		}
		_, _, err := mainRun(t, env, append([]string{"serve"}, tt.args...)...)
		if exitCodeOf(err) != 2 {
			t.Errorf("%v %v: got %v (exit %d), want a usage error", tt.args, tt.env, err, exitCodeOf(err))
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tt.flag) {
			t.Errorf("%v %v: the error %q does not name %s", tt.args, tt.env, msg, tt.flag)
		}
	}
}

// Pre-warming is on by default when the App is, and off without it.
func TestPrewarmFlagsDefaults(t *testing.T) {
	for _, tt := range []struct {
		secret string
		args   []string
		env    map[string]string
		want   bool
		ttl    time.Duration
		cap    int
	}{
		{"s3cret", nil, nil, true, 15 * time.Minute, 10},
		{"", nil, nil, false, 15 * time.Minute, 10},
		{"s3cret", []string{"--github-prewarm=false"}, nil, false, 15 * time.Minute, 10},
		{"s3cret", []string{"--prewarm-ttl", "5m"}, map[string]string{"SMEK_PREWARM_CAP": "3"}, true, 5 * time.Minute, 3},
		{"s3cret", nil, map[string]string{"SMEK_GITHUB_PREWARM": "false"}, false, 15 * time.Minute, 10},
	} {
		fs := newFlagSet("serve", "", io.Discard)
		var pf prewarmFlags
		pf.register(fs)
		if err := parseFlags(fs, tt.args, func(k string) string { return tt.env[k] }); err != nil {
			t.Fatal(err)
		}
		cfg := server.Config{GitHubWebhookSecret: tt.secret}
		if err := pf.apply(fs, &cfg); err != nil {
			t.Fatalf("%v %v: %v", tt.args, tt.env, err)
		}
		if cfg.GitHubPrewarm != tt.want || cfg.PrewarmTTL != tt.ttl || cfg.PrewarmCap != tt.cap {
			t.Errorf("secret %q %v %v: pre-warm %v ttl %s cap %d; want %v %s %d", tt.secret, tt.args, tt.env,
				cfg.GitHubPrewarm, cfg.PrewarmTTL, cfg.PrewarmCap, tt.want, tt.ttl, tt.cap)
		}
	}
}
