package main

import (
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	good := map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "1048576": 1 << 20, "64 KiB": 64 << 10, "100B": 100}
	for in, want := range good {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, int64(b), err, want)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "4GB", "lots", "99999999999TiB"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, int64(b))
		}
	}
	b := byteSize(4 << 30)
	if got := b.String(); got != "4GiB" {
		t.Errorf("String() = %q, want 4GiB", got)
	}
}

// A bad --image-max-bytes is a usage error naming the flag, from the
// flag and from SMEK_IMAGE_MAX_BYTES alike.
func TestServeRefusesBadImageMaxBytes(t *testing.T) {
	_, _, err := mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir()}, "serve", "--image-max-bytes", "4GB")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "image-max-bytes") || !strings.Contains(err.Error(), `"4GB"`) {
		t.Errorf("flag: got %v (exit %d), want a usage error naming --image-max-bytes and the bad value", err, exitCodeOf(err))
	}
	_, _, err = mainRun(t, map[string]string{"SMEK_DATA_DIR": t.TempDir(), "SMEK_IMAGE_MAX_BYTES": "0"}, "serve")
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "SMEK_IMAGE_MAX_BYTES") {
		t.Errorf("environment: got %v (exit %d), want a usage error naming SMEK_IMAGE_MAX_BYTES", err, exitCodeOf(err))
	}
}
