package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake"
	"github.com/smek/action/internal/sqlite"
)

// TestServeHetznerNeedsSSHSource: with SMEK's firewall (the default) and
// no --ssh-source-cidr, the firewall would let SSH in from nowhere and no
// server could be bootstrapped: serve refuses to start, names the flag and
// says what to give, before any request to Hetzner. A bad CIDR is refused
// the same way.
func TestServeHetznerNeedsSSHSource(t *testing.T) {
	fake, tokenFile, keyFile := imageFake(t)
	dir := t.TempDir()
	credKey := filepath.Join(dir, "cred")
	if err := os.WriteFile(credKey, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--backend", "hetzner", "--data-dir", dir, "--hcloud-endpoint", fake.URL, "--hcloud-token-file", tokenFile,
		"--ssh-key-file", keyFile, "--credential-key-file", credKey, "--ops-addr", ""}
	_, _, err := mainRun(t, nil, base...)
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--ssh-source-cidr") || !strings.Contains(err.Error(), `"smek"`) {
		t.Errorf("no --ssh-source-cidr: %v (exit %d), want a usage error naming the flag and the firewall", err, exitCodeOf(err))
	}
	_, _, err = mainRun(t, nil, append(base, "--ssh-source-cidr", "203.0.113.7")...)
	if exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--ssh-source-cidr") {
		t.Errorf("a source that is no CIDR: %v (exit %d), want a usage error", err, exitCodeOf(err))
	}
	if n := fake.TotalRequests(); n != 0 {
		t.Errorf("requests to Hetzner before refusing: %d", n)
	}
	if got, err := sshSources("smek", " 203.0.113.7/32, 2001:db8::7/128"); err != nil || strings.Join(got, ",") != "203.0.113.7/32,2001:db8::7/128" {
		t.Errorf("sources: %v, %v", got, err)
	}
	if got, err := sshSources("", ""); err != nil || len(got) != 0 {
		t.Errorf("no firewall of SMEK's, no sources: %v, %v; want fine", got, err)
	}
}

// TestImagePrune: `provisioner image prune` keeps the --keep newest golden
// snapshots of each version and any a member's server was built from (the
// database in --data-dir), deletes the others, and with --dry-run only
// says so. Without the database it refuses.
func TestImagePrune(t *testing.T) {
	ctx := context.Background()
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fake := hcloudfake.New(hcloudfake.Config{Token: "secret-token", Clock: clock}).Start()
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := hcloud.NewClient(hcloud.WithEndpoint(fake.URL), hcloud.WithToken("secret-token"))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "src", ServerType: &hcloud.ServerType{Name: "ccx13"}, Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	if err != nil {
		t.Fatal(err)
	}
	// Four snapshots of 1.36.3 and two of 1.35.0, oldest first.
	ids := map[string][]int64{}
	for _, v := range []string{"1.36.3", "1.35.0", "1.36.3", "1.35.0", "1.36.3", "1.36.3"} {
		clock.Advance(time.Minute)
		ir, _, err := c.Server.CreateImage(ctx, res.Server, &hcloud.ServerCreateImageOpts{Type: hcloud.ImageTypeSnapshot,
			Labels: map[string]string{"smek.io/install": "ci", "smek.io/role": "golden", "smek.io/k8s-version": v}})
		if err != nil {
			t.Fatal(err)
		}
		ids[v] = append(ids[v], ir.Image.ID)
	}
	clock.Advance(time.Minute)
	args := []string{"image", "prune", "--keep", "2", "--hcloud-endpoint", fake.URL, "--hcloud-token-file", tokenFile, "--installation", "ci", "--data-dir", dir}

	// No database: refused, nothing deleted.
	if _, _, err := mainRun(t, nil, args...); exitCodeOf(err) != 2 || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("without a database: %v, want a usage error naming --data-dir", err)
	}

	db, err := sqlite.Open(ctx, filepath.Join(dir, "smek.db"))
	if err != nil {
		t.Fatal(err)
	}
	flavor := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	m, err := db.CreateMember(ctx, "hetzner", flavor)
	if err != nil {
		t.Fatal(err)
	}
	// A member still on the oldest 1.36.3 snapshot.
	oldest := ids["1.36.3"][0]
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberReady, []byte(fmt.Sprintf(`{"server-id":1,"image":%d}`, oldest)), ""); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, _, err := mainRun(t, nil, append(args, "--dry-run")...)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	deleted := ids["1.36.3"][1]
	for _, want := range []string{
		fmt.Sprintf("delete  snapshot %d  k8s 1.36.3", deleted),
		fmt.Sprintf("keep    snapshot %d  k8s 1.36.3", oldest), "image of member " + m.ID,
		fmt.Sprintf("keep    snapshot %d  k8s 1.36.3", ids["1.36.3"][3]), "newest 2 of Kubernetes 1.36.3",
		fmt.Sprintf("keep    snapshot %d  k8s 1.35.0", ids["1.35.0"][0]),
		"dry run: 1 snapshot(s) would be deleted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if n := fake.Counts()["DELETE /images/{id}"]; n != 0 {
		t.Errorf("deletes in a dry run: %d", n)
	}

	out, _, err = mainRun(t, nil, args...)
	if err != nil {
		t.Fatalf("prune: %v\n%s", err, out)
	}
	if !strings.Contains(out, fmt.Sprintf("deleted snapshot %d", deleted)) || !strings.Contains(out, "1 snapshot(s) deleted") {
		t.Errorf("output:\n%s", out)
	}
	left := map[int64]bool{}
	for _, img := range fake.Images() {
		left[img.ID] = true
	}
	for v, list := range ids {
		for _, id := range list {
			if left[id] == (id == deleted) {
				t.Errorf("snapshot %d (%s): left %v", id, v, left[id])
			}
		}
	}
	if _, _, err := mainRun(t, nil, append(args, "--keep", "0")...); exitCodeOf(err) != 2 {
		t.Errorf("--keep 0: %v, want a usage error", err)
	}
}
