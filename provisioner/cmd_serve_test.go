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
