package envflag

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestName(t *testing.T) {
	for flagName, want := range map[string]string{
		"data-dir":      "SMEK_DATA_DIR",
		"hcloud-token":  "SMEK_HCLOUD_TOKEN",
		"addr":          "SMEK_ADDR",
		"github-app-id": "SMEK_GITHUB_APP_ID",
	} {
		if got := Name("SMEK_", flagName); got != want {
			t.Errorf("Name(SMEK_, %q) = %q, want %q", flagName, got, want)
		}
	}
}

type flags struct {
	fs      *flag.FlagSet
	token   *string
	timeout *time.Duration
	n       *int
	level   slog.Level
}

func newFlags() *flags {
	f := &flags{fs: flag.NewFlagSet("test", flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.token = f.fs.String("token", "", "")
	f.timeout = f.fs.Duration("timeout", time.Second, "")
	f.n = f.fs.Int("n", 1, "")
	f.fs.TextVar(&f.level, "log-level", slog.LevelInfo, "")
	return f
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func prefixed(flagName string) string { return Name("SMEK_", flagName) }

func TestParse(t *testing.T) {
	f := newFlags()
	err := Parse(f.fs, []string{"--n", "3"}, env(map[string]string{
		"SMEK_TOKEN":   "smek_secret",
		"SMEK_TIMEOUT": "5s",
		"SMEK_N":       "7", // the command line wins
	}), prefixed)
	if err != nil {
		t.Fatal(err)
	}
	if *f.token != "smek_secret" || *f.timeout != 5*time.Second || *f.n != 3 {
		t.Errorf("got token %q, timeout %v, n %d, want smek_secret, 5s, 3", *f.token, *f.timeout, *f.n)
	}
}

// TestParseNeverPrintsTheValue feeds every flag a bad value that looks like
// a secret: the error names the variable and the flag, never the value.
func TestParseNeverPrintsTheValue(t *testing.T) {
	const secret = "ghs_s3cr3t-v@lue"
	for _, name := range []string{"timeout", "n", "log-level"} {
		t.Run(name, func(t *testing.T) {
			err := Parse(newFlags().fs, nil, env(map[string]string{prefixed(name): secret}), prefixed)
			var ee *Error
			if !errors.As(err, &ee) || ee.Var != prefixed(name) || ee.Flag != name {
				t.Fatalf("got %v, want an *Error for %s and --%s", err, prefixed(name), name)
			}
			if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "s3cr3t") {
				t.Errorf("error %q shows the value", msg)
			}
			if msg := err.Error(); !strings.Contains(msg, prefixed(name)) || !strings.Contains(msg, "--"+name) {
				t.Errorf("error %q does not name $%s and --%s", msg, prefixed(name), name)
			}
		})
	}
}

func TestParseCommandLineErrors(t *testing.T) {
	if err := Parse(newFlags().fs, []string{"--help"}, env(nil), prefixed); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: got %v, want flag.ErrHelp", err)
	}
	var ee *Error
	if err := Parse(newFlags().fs, []string{"--n", "x"}, env(nil), prefixed); err == nil || errors.As(err, &ee) {
		t.Errorf("--n x: got %v, want the flag package's error", err)
	}
}
