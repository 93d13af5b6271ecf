package main

import (
	"strings"
	"testing"
)

// Stopped clusters must end: --max-stopped-lifetime takes a positive
// duration, and anything else is a usage error that names the flag and
// says what is wrong, before the server starts.
func TestServeRefusesBadMaxStoppedLifetime(t *testing.T) {
	for _, val := range []string{"0", "0s", "-1h", "a week"} {
		_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--max-stopped-lifetime", val)
		if exitCodeOf(err) != 2 {
			t.Errorf("--max-stopped-lifetime %q: got %v (exit %d), want a usage error", val, err, exitCodeOf(err))
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "max-stopped-lifetime") || strings.Contains(msg, "not defined") {
			t.Errorf("--max-stopped-lifetime %q: the error %q does not name the flag and what is wrong", val, msg)
		}
	}
}

// A bad --local-egress-allow is a usage error that names the flag.
func TestServeRefusesBadEgressAllow(t *testing.T) {
	_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--local-egress-allow", "10.0.0.0/8,not-a-cidr")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--local-egress-allow") || !strings.Contains(err.Error(), "not-a-cidr") {
		t.Errorf("got %v (exit %d), want a usage error naming --local-egress-allow and the bad value", err, exitCodeOf(err))
	}
}

// A --local-nodes other than auto, on or off is a usage error naming the
// flag, from the flag and from SMEK_LOCAL_NODES alike.
func TestServeRefusesBadLocalNodes(t *testing.T) {
	_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--local-nodes", "yes")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--local-nodes") || !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("flag: got %v (exit %d), want a usage error naming --local-nodes and the bad value", err, exitCodeOf(err))
	}
	_, _, err = mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir(), "SMEK_LOCAL_NODES": "maybe"}, "serve")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), `"maybe"`) {
		t.Errorf("environment: got %v (exit %d), want a usage error with the bad value", err, exitCodeOf(err))
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes(" 10.1.2.3/8, ,fd00::/8")
	if err != nil || len(got) != 2 || got[0].String() != "10.0.0.0/8" || got[1].String() != "fd00::/8" {
		t.Errorf("got %v, %v; want [10.0.0.0/8 fd00::/8]", got, err)
	}
	if got, err := parsePrefixes(""); err != nil || got != nil {
		t.Errorf("empty: got %v, %v; want none", got, err)
	}
}

// --hibernate-after is 0 (never) or a positive duration; anything else,
// by flag or by SMEK_HIBERNATE_AFTER, is a usage error naming it.
func TestServeRefusesBadHibernateAfter(t *testing.T) {
	for _, val := range []string{"-1h", "two hours"} {
		_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--hibernate-after", val)
		if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "hibernate-after") || strings.Contains(err.Error(), "not defined") {
			t.Errorf("--hibernate-after %q: got %v (exit %d), want a usage error naming the flag", val, err, exitCodeOf(err))
		}
	}
	_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir(), "SMEK_HIBERNATE_AFTER": "-5m"}, "serve")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "hibernate-after") {
		t.Errorf("SMEK_HIBERNATE_AFTER=-5m: got %v (exit %d), want a usage error naming the flag", err, exitCodeOf(err))
	}
}
