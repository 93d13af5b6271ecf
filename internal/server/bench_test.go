package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// reportLatencies adds p50 and p99 of the timed operations to the result.
func reportLatencies(b *testing.B, ds []time.Duration) {
	b.ReportMetric(percentile(ds, 0.50), "p50-ms")
	b.ReportMetric(percentile(ds, 0.99), "p99-ms")
}

// percentile returns the p-th percentile of ds in milliseconds (nearest
// rank below).
func percentile(ds []time.Duration, p float64) float64 {
	ds = slices.Sorted(slices.Values(ds))
	return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
}

// BenchmarkWarmClaim: create → kubeconfig against a ready pool, over HTTP,
// as a user waits for it:
//
//   - refilling: the usual case. The pool (3 members) boots replacements
//     for the clusters the earlier iterations ended while the timed
//     claim runs; each claim waits until a member is ready and another
//     boots.
//   - idle: the pool is full, nothing boots or is cleaned, and the last
//     member became ready half a minute ago: a control plane keeps both
//     cores busy for some seconds after it is ready (its controllers'
//     first syncs), and a machine doing that is not idle.
//
// Besides p50/p99 of the whole request it reports the p50 of the answer's
// timings: the claim transaction and the cluster writes (ownership record
// and tenant token).
func BenchmarkWarmClaim(b *testing.B) {
	for _, v := range []struct {
		name string
		when func(smektest.PoolCounts) bool
	}{
		{"refilling", func(p smektest.PoolCounts) bool { return p.Ready >= 1 && p.Booting >= 1 }},
		{"idle", func(p smektest.PoolCounts) bool {
			return p.Ready == 3 && p.Booting == 0 && p.Cleaning == 0 && time.Since(p.LastReady) > 30*time.Second
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			smek := smektest.Start(b, smektest.Options{PoolSize: 3, Configure: benchNodes(b)})
			token := smek.Token("bench", smektest.TokenOptions{MaxClusters: 1000})
			var total, claim, ready []time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				smek.WaitPool(v.name, 3, v.when)
				b.StartTimer()
				start := time.Now()
				c := mustJSON[wire.Cluster](b, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "0s", "keep-cluster": false}`)
				total = append(total, time.Since(start))
				b.StopTimer()
				if !c.Timings.Warm {
					b.Fatalf("claim was not warm: %+v", c.Timings)
				}
				claim = append(claim, time.Duration(c.Timings.ClaimedMS)*time.Millisecond)
				ready = append(ready, time.Duration(c.Timings.ReadyMS)*time.Millisecond)
				mustJSON[wire.Cluster](b, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/terminate", token, "")
				b.StartTimer()
			}
			b.StopTimer()
			reportLatencies(b, total)
			b.ReportMetric(percentile(claim, 0.5), "claim-tx-p50-ms")
			b.ReportMetric(percentile(ready, 0.5), "writes-p50-ms")
		})
	}
}

// benchNodes gives the local clusters a kubelet node when SMEK_BENCH_NODES
// is set: the claim benchmarks then run against members that run pods
// (`SMEK_BENCH_NODES=1 make bench`, compared with a run without it).
func benchNodes(b *testing.B) func(*server.Config) {
	if os.Getenv("SMEK_BENCH_NODES") == "" {
		return nil
	}
	if err := local.CheckNodeSupport(smektest.KubeBin(b)); err != nil {
		b.Fatal(err)
	}
	return func(c *server.Config) { c.LocalNodes = "on" }
}

// BenchmarkColdCreate: create → kubeconfig with no pool: a control plane is
// started, the policy applied and the node registered while the request
// waits. The baseline for BenchmarkWarmClaim.
func BenchmarkColdCreate(b *testing.B) {
	smek := smektest.Start(b, smektest.Options{})
	token := smek.Token("bench", smektest.TokenOptions{MaxClusters: 1000})
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c := mustJSON[wire.Cluster](b, 201, "POST", smek.URL+"/v1/clusters", token, `{"wait": "5m", "keep-cluster": false}`)
		ds = append(ds, time.Since(start))
		b.StopTimer()
		mustJSON[wire.Cluster](b, 200, "POST", smek.URL+"/v1/clusters/"+c.ClusterID+"/terminate", token, "")
		b.StartTimer()
	}
	b.StopTimer()
	reportLatencies(b, ds)
}

// BenchmarkList10000: GET /list for an account with 10,000 clusters.
func BenchmarkList10000(b *testing.B) {
	smek, token := startWith10000Clusters(b)
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		status, body := call(b, "GET", smek.URL+"/list", token, "", "")
		ds = append(ds, time.Since(start))
		b.StopTimer()
		var list []wire.ListItem
		if err := json.Unmarshal(body, &list); status != 200 || err != nil || len(list) != 10000 {
			b.Fatalf("/list: status %d, %d clusters, %v", status, len(list), err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportLatencies(b, ds)
}

// startWith10000Clusters starts a server whose account "big" has 10,000
// running clusters (on made-up servers: only the records matter).
func startWith10000Clusters(b testing.TB) (*smektest.SMEK, string) {
	smek := smektest.Start(b, smektest.Options{})
	token := smek.Token("big", smektest.TokenOptions{MaxClusters: 20000})
	ctx := context.Background()
	a, err := smek.DB.AccountByName(ctx, "big")
	if err != nil {
		b.Fatal(err)
	}
	f := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	for i := range 10000 {
		s, err := smek.DB.CreateMember(ctx, "bench", f)
		if err != nil {
			b.Fatal(err)
		}
		if err := smek.DB.SetMemberState(ctx, s.ID, cluster.MemberReady, nil, ""); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		c := cluster.Cluster{ID: cluster.ID(fmt.Sprintf("c-%06d", i)), AccountID: a.ID, Account: a.Name,
			Spec: cluster.Spec{K8sVersion: f.K8sVersion, Size: f.Size, MinutesToLive: 60}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := smek.DB.ClaimMember(ctx, c, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	return smek, token
}

// BenchmarkIdleServerRSS measures the resident memory of `provisioner serve`
// with no clusters (pool size 0), as a separate process.
func BenchmarkIdleServerRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "provisioner")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/smek/action/provisioner").CombinedOutput(); err != nil {
		b.Fatalf("build: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var rss float64
	for range b.N {
		cmd := exec.Command(bin, "serve", "--addr", addr, "--pool-size", "0", "--data-dir", b.TempDir(), "--kube-bin", smektest.KubeBin(b))
		logs, err := cmd.StderrPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		// The server logs "SMEK listening" once it serves; the rest of its
		// log is drained so that it never blocks on a full pipe.
		lines := bufio.NewScanner(logs)
		for lines.Scan() && !strings.Contains(lines.Text(), "SMEK listening") {
		}
		go io.Copy(io.Discard, logs)
		// Let the startup settle: the first sweep and pool reconcile.
		http.Get("http://" + addr + "/readyz")
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var n float64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), &n)
				rss = n / 1024
			}
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	b.ReportMetric(rss, "rss-MB")
}
