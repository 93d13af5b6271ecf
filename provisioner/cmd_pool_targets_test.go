package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/smek/action/internal/local/localtest"
)

// signalWriter collects what is written and closes seen once it contains
// want.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestPoolStatusShowsTheServersTargets: `pool status` shows the targets
// the server was started with, not its own defaults.
func TestPoolStatusShowsTheServersTargets(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &signalWriter{want: "SMEK listening", seen: make(chan struct{})}
	kubeBin := localtest.KubeBin(t) // skips here, not in the goroutine, without the binaries
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--ops-addr", "",
			"--kube-bin", kubeBin, "--pool-size", "3", "--pool-size-privileged", "1", "--local-nodes", "off"},
			func(string) string { return "" }, &bytes.Buffer{}, logs)
	}()
	select {
	case <-logs.seen:
	case err := <-done:
		cancel()
		t.Fatalf("serve ended: %v\n%s", err, logs.buf.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	var out, errOut bytes.Buffer
	if err := cmdPool(context.Background(), []string{"status", "--data-dir", dir, "--json"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("pool status: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{`"flavor": "1.36.3/1-mid/baseline"`, `"target": 3`, `"flavor": "1.36.3/1-mid/privileged"`, `"target": 1`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("pool status lacks %s:\n%s", want, out.String())
		}
	}
}

// TestPoolStatusWithoutAServer: on a database no server has run on, pool
// status says that there are no targets to show.
func TestPoolStatusWithoutAServer(t *testing.T) {
	dir := opsDB(t, poolServerRow("s1", "1.27.4", 0, "ready"))
	var out, errOut bytes.Buffer
	if err := cmdPool(context.Background(), []string{"status", "--data-dir", dir}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("pool status: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "No SMEK server has run on this database") {
		t.Errorf("pool status without a server:\n%s\nwant it to say that no server has run", out.String())
	}
}
