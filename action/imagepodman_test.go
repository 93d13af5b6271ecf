package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// podmanEngine starts `podman system service` on a socket of the test's
// own, handed over by socket activation (LISTEN_FDS), so that the socket
// answers from the start without waiting for podman to create it. It
// returns the DOCKER_HOST of the service.
func podmanEngine(t *testing.T, p *podman) string {
	t.Helper()
	sock, ln := listenUnix(t)
	// Only the service is to answer on it: the test's copy goes, the
	// socket file stays.
	ln.SetUnlinkOnClose(false)
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// LISTEN_PID must be podman's own pid: the shell's, kept by exec.
	cmd := p.cmd(t.Context(), "system", "service", "--time=0")
	cmd.Args = append([]string{"sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}, cmd.Args...)
	cmd.Path = "/bin/sh"
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return "unix://" + sock
}

// TestImageLoadFromPodman exports images through a real Docker-compatible
// Engine API (podman's) into the strict fake of the server.
func TestImageLoadFromPodman(t *testing.T) {
	p := newPodman(t)
	c := newImageCLI(t)
	rootfs := writeFile(t, filepath.Join(t.TempDir(), "rootfs.tar"), tarOf(t, map[string]string{"hello": "hi\n"}))
	p.must("import", rootfs, "app:dev")
	p.must("tag", "app:dev", "redis:7")
	c.vars["DOCKER_HOST"] = podmanEngine(t, p)

	if _, stderr, err := c.run("image", "load", "app:dev", "redis:7"); err != nil {
		t.Fatalf("image load: %v\n%s", err, stderr)
	}
	loads := c.images.Loads()
	if len(loads) != 1 || loads[0].Status != 200 || loads[0].ContentLength != -1 {
		t.Fatalf("uploads = %+v, want one chunked", loads)
	}
	if got, want := names(loads[0].Images), []string{"localhost/app:dev", "localhost/redis:7"}; !slices.Equal(got, want) {
		t.Errorf("imported %q, want %q", got, want)
	}

	// Podman 4 answers a missing image with a 500 and its message.
	_, _, err := c.run("image", "load", "app:nope")
	if err == nil || !strings.Contains(err.Error(), "cannot export app:nope: ") || !strings.Contains(err.Error(), "image not known") {
		t.Errorf("missing image: err = %v", err)
	}
	if n := len(c.images.Loads()); n != 1 {
		t.Errorf("%d uploads, want no more", n)
	}
}
