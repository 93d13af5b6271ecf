// Package localtest finds the Kubernetes binaries of the local backend for
// tests in any package.
package localtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/smek/action/internal/local"
)

// KubeBin returns the folder with the Kubernetes binaries ($SMEK_KUBE_BIN,
// else the repository's bin/kube, where `make kube-bin` puts them). Without
// them the test is skipped — or fails under CI, which builds them first.
func KubeBin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SMEK_KUBE_BIN")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "kube")
	}
	if err := local.CheckBinaries(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
