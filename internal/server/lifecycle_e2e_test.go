package server_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestTTLAcrossRestart: a 1-minute cluster is gone within 2 minutes even if
// the server was down when its deadline passed. The deadline lives in
// SQLite; the sweeper acts on it at the next start. A keep-cluster cluster
// is stopped rather than terminated.
func TestTTLAcrossRestart(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	smek := smektest.Start(t, smektest.Options{PoolSize: 2, DataDir: dir, Clock: clk})
	token := smek.Token("ttl", smektest.TokenOptions{})
	smek.WaitReady(2, false)
	gone := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"minutes-to-live": 1, "keep-cluster": false}`)
	kept := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"minutes-to-live": 1, "keep-cluster": true}`)
	if want := clk.Now().Add(time.Minute); gone.ExpiresAt.Sub(want).Abs() > time.Second {
		t.Fatalf("expires-at %s, want %s", gone.ExpiresAt, want)
	}
	// Before the deadline the sweeper leaves them alone.
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+gone.ClusterID, token, ""); c.ClusterStatus != "running" {
		t.Fatalf("swept before its deadline: %s", c.ClusterStatus)
	}
	smek.Stop()

	clk.Advance(61 * time.Second) // the deadline passes while SMEK is down
	smek2 := smektest.Start(t, smektest.Options{PoolSize: 2, DataDir: dir, Clock: clk})
	// The sweeper job runs at start; Sweep here makes the test wait for a
	// sweep deterministically (both take the cluster's lock).
	if err := smek2.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := mustJSON[wire.Cluster](t, 200, "GET", smek2.URL+"/v1/clusters/"+gone.ClusterID, token, ""); c.ClusterStatus != "terminated" {
		t.Errorf("keep-cluster:false cluster after its deadline: %s, want terminated", c.ClusterStatus)
	}
	if c := mustJSON[wire.Cluster](t, 200, "GET", smek2.URL+"/v1/clusters/"+kept.ClusterID, token, ""); c.ClusterStatus != "stopped" {
		t.Errorf("keep-cluster:true cluster after its deadline: %s, want stopped", c.ClusterStatus)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek2.URL+"/v1/clusters/"+gone.ClusterID+"/events", token, "")
	last := evs.Events[len(evs.Events)-1]
	if last.Type != "terminated" || last.Cause != "ttl" {
		t.Errorf("last event %+v, want terminated by ttl", last)
	}
}

// TestExtend moves the deadline, bounded by the account's maximum.
func TestExtend(t *testing.T) {
	clk := newClock()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Clock: clk})
	token := smek.Token("extender", smektest.TokenOptions{MaxMinutesToLive: 90})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"minutes-to-live": 30}`)
	ext := mustJSON[wire.Cluster](t, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/extend", token, `{"minutes": 30}`)
	if got := ext.ExpiresAt.Sub(c.ExpiresAt); got != 30*time.Minute {
		t.Errorf("extend moved the deadline by %s, want 30m", got)
	}
	status, b := call(t, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/extend", token, `{"minutes": 31}`, "application/json")
	problemOf(t, status, b, 400, "invalid")
	clk.Advance(59 * time.Minute)
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "running" {
		t.Errorf("extended cluster swept early: %s", got.ClusterStatus)
	}
	// A fresh kubeconfig for the extended cluster.
	kc := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/kubeconfig", token, "")
	if out, err := kubectl(t, writeKubeconfig(t, kc.Kubeconfig), "get", "ns", "default"); err != nil {
		t.Errorf("kubeconfig from /kubeconfig: %v: %s", err, out)
	}
}

// TestColdCreateWaitsForTheNextCluster: with an empty pool a create waits
// for a control plane to boot, and says so in its timings; with too short a
// wait it is a 503 that leaves no cluster behind.
func TestColdCreateWaitsForTheNextCluster(t *testing.T) {
	smek := smektest.Start(t, smektest.Options{})
	token := smek.Token("cold", smektest.TokenOptions{})
	status, b := call(t, "POST", smek.URL+"/v1/clusters", token, `{"wait": "1ms"}`, "application/json")
	problemOf(t, status, b, 503, "unavailable")
	if cs, _ := smek.DB.Clusters(context.Background(), cluster.Filter{}); len(cs) != 0 {
		t.Errorf("a create that timed out left %d clusters", len(cs))
	}
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "3m"}`)
	if c.Timings == nil || c.Timings.Warm || c.Timings.QueuedMS == 0 {
		t.Errorf("cold create timings %+v, want warm=false with queued time", c.Timings)
	}
	if out, err := kubectl(t, writeKubeconfig(t, c.Kubeconfig), "get", "nodes", "-L", "smek-cluster-id"); err != nil || !strings.Contains(out, c.ClusterID) {
		t.Errorf("kubectl on the cold cluster: %v: %s", err, out)
	}
}

// TestRestartStopsChildrenAndRemovesOrphans: the server stops its control
// planes on exit and resumes the ones that serve clusters at the next
// start; folders and processes that no record explains are removed.
func TestRestartStopsChildrenAndRemovesOrphans(t *testing.T) {
	dir := t.TempDir()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, DataDir: dir})
	token := smek.Token("restart", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{}`)
	servers, err := smek.DB.Members(context.Background(), "local")
	if err != nil {
		t.Fatal(err)
	}
	// The claim made the pool boot a replacement, which may not have
	// recorded its processes yet: its pid file is read when there is one,
	// before the stop and again after it.
	pids := map[int]bool{}
	record := func(id string, required bool) {
		b, err := os.ReadFile(filepath.Join(dir, "clusters", id, "pids"))
		if errors.Is(err, os.ErrNotExist) && !required {
			return
		}
		if err != nil {
			t.Fatalf("pid file of %s: %v", id, err)
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("pid file of %s: %v", id, err)
			}
			pids[pid] = true
		}
	}
	for _, s := range servers {
		record(s.ID, s.State != cluster.MemberCreating)
	}
	if len(pids) == 0 {
		t.Fatal("no control plane processes recorded")
	}
	smek.Stop()
	for _, s := range servers {
		record(s.ID, false)
	}
	for pid := range pids {
		if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			t.Errorf("process %d still runs after the server stopped", pid)
		}
	}

	// An orphan: a folder no record explains, with a process running from it.
	orphan := filepath.Join(dir, "clusters", "s-0rphan0rphan")
	if err := os.MkdirAll(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("/bin/sh", "-c", "sleep 600", orphan)
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	var waited sync.WaitGroup
	waited.Go(func() { sleeper.Wait() })
	if err := os.WriteFile(filepath.Join(orphan, "pids"), []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	smek2 := smektest.Start(t, smektest.Options{PoolSize: 1, DataDir: dir})
	waited.Wait() // returns only once the orphan process was killed
	// The folder goes after the process, in the same reconcile, which
	// the pool's recovery runs.
	<-smek2.Pool.Recovered()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan folder still there: %v", err)
	}
	// The cluster that ran before the restart runs again.
	kc := mustJSON[wire.Cluster](t, 200, "GET", smek2.URL+"/v1/clusters/"+c.ClusterID+"/kubeconfig", token, "")
	if out, err := kubectl(t, writeKubeconfig(t, kc.Kubeconfig), "get", "ns", "default"); err != nil {
		t.Errorf("cluster after restart: %v: %s", err, out)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return err != nil || strings.Contains(string(b), ") Z ")
}

// TestConcurrentCreatesFromAFullPool: 20 creates at once against a pool of
// 20 all succeed, and no control plane serves two clusters.
func TestConcurrentCreatesFromAFullPool(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 control planes")
	}
	const n = 20
	smek := smektest.Start(t, smektest.Options{PoolSize: n, Configure: nil})
	token := smek.Token("burst", smektest.TokenOptions{MaxClusters: n})
	smek.WaitReady(n, false)
	var wg sync.WaitGroup
	results := make([]wire.Cluster, n)
	for i := range n {
		wg.Go(func() {
			results[i] = mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "0s"}`)
		})
	}
	wg.Wait()
	servers, err := smek.DB.Members(context.Background(), "local")
	if err != nil {
		t.Fatal(err)
	}
	byCluster := map[cluster.ID]string{}
	for _, s := range servers {
		if s.ClusterID != "" {
			if prev, ok := byCluster[s.ClusterID]; ok {
				t.Errorf("cluster %s on two servers: %s and %s", s.ClusterID, prev, s.ID)
			}
			byCluster[s.ClusterID] = s.ID
		}
	}
	apis := map[string]string{}
	for _, c := range results {
		if c.ClusterStatus != "running" || c.Timings == nil || !c.Timings.Warm {
			t.Errorf("create %+v: want running and warm", c)
		}
		if other, ok := apis[c.APIServer]; ok {
			t.Errorf("clusters %s and %s share the API server %s", other, c.ClusterID, c.APIServer)
		}
		apis[c.APIServer] = c.ClusterID
		if _, ok := byCluster[cluster.ID(c.ClusterID)]; !ok {
			t.Errorf("cluster %s has no server", c.ClusterID)
		}
	}
	if len(apis) != n || len(byCluster) != n {
		t.Errorf("%d distinct API servers and %d claimed servers, want %d", len(apis), len(byCluster), n)
	}
}

// TestKeep: a failed job's cleanup keeps its cluster for debugging. The
// deadline becomes now plus the minutes asked, shortened to the account's
// maximum; the cluster says it is kept, and its deadline still ends it.
// Other accounts cannot keep it, and bad input names its field.
func TestKeep(t *testing.T) {
	clk := newClock()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, Clock: clk})
	token := smek.Token("keeper", smektest.TokenOptions{MaxMinutesToLive: 90})
	other := smek.Token("other", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{"minutes-to-live": 30, "keep-cluster": false}`)
	if c.KeptAt != nil {
		t.Fatalf("a new cluster is kept: %v", c.KeptAt)
	}
	keep := smek.URL + "/v1/clusters/" + c.ClusterID + "/keep"

	for _, bad := range []struct{ body, field string }{
		{`{}`, "minutes"},
		{`{"minutes": 0}`, "minutes"},
		{`{"minutes": 10, "reason": "two\nlines"}`, "reason"},
		{`{"minutes": 10, "reason": "` + strings.Repeat("x", 201) + `"}`, "reason"},
		{`{"minutes": 10, "color": "red"}`, "color"},
	} {
		status, b := call(t, "POST", keep, token, bad.body, "application/json")
		if p := problemOf(t, status, b, 400, "invalid"); p.Field != bad.field {
			t.Errorf("keep %s: field %q, want %q", bad.body, p.Field, bad.field)
		}
	}
	status, b := call(t, "POST", keep, other, `{"minutes": 10}`, "application/json")
	problemOf(t, status, b, 404, "not-found")

	clk.Advance(20 * time.Minute) // the job ran for 20 minutes and failed
	kept := mustJSON[wire.Cluster](t, 200, "POST", keep, token, `{"minutes": 600, "reason": "job e2e failed"}`)
	if want := clk.Now().Add(90 * time.Minute); !kept.ExpiresAt.Equal(want) {
		t.Errorf("kept until %s, want %s (now + the account's 90 minutes)", kept.ExpiresAt, want)
	}
	if kept.KeptAt == nil || !kept.KeptAt.Equal(clk.Now()) || kept.KeptReason != "job e2e failed" {
		t.Errorf("kept-at %v, kept-reason %q", kept.KeptAt, kept.KeptReason)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.KeptAt == nil || got.KeptReason != "job e2e failed" {
		t.Errorf("GET shows kept-at %v, kept-reason %q", got.KeptAt, got.KeptReason)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/events", token, "")
	if last := evs.Events[len(evs.Events)-1]; !strings.Contains(last.Message, "kept for debugging for 90 minutes (asked 600") || !strings.Contains(last.Message, "job e2e failed") {
		t.Errorf("last event %+v", last)
	}

	// It outlives its first deadline and ends at the new one.
	clk.Advance(89 * time.Minute)
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "running" {
		t.Fatalf("kept cluster %s before its new deadline", got.ClusterStatus)
	}
	clk.Advance(2 * time.Minute)
	if err := smek.Life.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "terminated" {
		t.Errorf("kept cluster %s after its deadline, want terminated", got.ClusterStatus)
	}
	status, b = call(t, "POST", keep, token, `{"minutes": 10}`, "application/json")
	problemOf(t, status, b, 409, "conflict")
}
