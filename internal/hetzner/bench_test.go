package hetzner

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/kube"
	"github.com/smek/action/internal/sqlite"
)

// benchBackend returns a backend on a stubbed world (no SSH, no
// Kubernetes: the cloud side only) with its one-time setup (SSH key,
// firewall, snapshot list) done.
func benchBackend(b *testing.B, w *world) (*Backend, *stubNode) {
	b.Helper()
	be := w.backend(http.DefaultTransport)
	stub := installStub(be)
	ctx := context.Background()
	if _, err := be.ensureSSHKey(ctx); err != nil {
		b.Fatal(err)
	}
	if err := be.ensureFirewall(ctx); err != nil {
		b.Fatal(err)
	}
	return be, stub
}

// BenchmarkLifecycleRequests counts the Hetzner API requests of one
// cluster's whole life on a server of its own: provision (create from the
// snapshot), claim (Kubernetes only: no request), stop, start, release
// (rebuild) and destroy. Goal: ≤ 12.
func BenchmarkLifecycleRequests(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b, worldOptions{})
	be, _ := benchBackend(b, w)
	w.fake.ResetCounts()
	b.ResetTimer()
	for i := range b.N {
		m := cluster.Member{ID: fmt.Sprintf("s-bench%d", i), Flavor: flavor, State: cluster.MemberCreating}
		data, err := be.Provision(ctx, m)
		if err != nil {
			b.Fatal(err)
		}
		m.Data, m.State = data, cluster.MemberClaimed
		if err := be.Stop(ctx, m); err != nil {
			b.Fatal(err)
		}
		if m.Data, err = be.Start(ctx, m); err != nil {
			b.Fatal(err)
		}
		ok, data, err := be.Release(ctx, m)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		m.Data = data
		if err := be.Destroy(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(w.fake.TotalRequests())/float64(b.N), "hetzner-requests/op")
}

// BenchmarkWarmClaim measures a create against a ready member as the user
// waits for it at the backend: the claim transaction in SQLite and the
// backend's claim (ownership ConfigMap and TokenRequest together, the node
// labelled at ready time) on a simulated node with a real control plane.
// It makes no Hetzner request.
//
// rtt=0 has the node's API on loopback; rtt=40ms puts it 20 ms away each
// way (a latency proxy), as a real server's is. The member's connection is
// warm, as the pool's health round keeps it (one Healthy before the
// first claim); cold-connection drops the member's client before each
// claim, so the claim pays the TCP and TLS handshakes first.
func BenchmarkWarmClaim(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b, worldOptions{machines: true})
	db, err := sqlite.Open(ctx, w.dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m, err := db.CreateMember(ctx, "hetzner", flavor)
	if err != nil {
		b.Fatal(err)
	}
	data, err := w.backend(http.DefaultTransport).Provision(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	defer w.backend(http.DefaultTransport).Destroy(context.Background(), cluster.Member{ID: m.ID, Data: data})
	if err := db.SetMemberState(ctx, m.ID, cluster.MemberReady, data, ""); err != nil {
		b.Fatal(err)
	}
	m.Data = data
	n := 1 << 30
	acct, err := db.EnsureAccount(ctx, "bench", sqlite.AccountLimits{MaxClusters: &n})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name  string
		delay time.Duration
		cold  bool
	}{
		{"rtt=0", 0, false},
		{"rtt=40ms", 20 * time.Millisecond, false},
		{"rtt=40ms/cold-connection", 20 * time.Millisecond, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			be := w.backendWith(http.DefaultTransport, v.delay)
			if err := be.Healthy(ctx, m); err != nil {
				b.Fatal(err)
			}
			w.fake.ResetCounts()
			var ds []time.Duration
			b.ResetTimer()
			for range b.N {
				if v.cold {
					b.StopTimer()
					be.admins.drop(m.ID)
					b.StartTimer()
				}
				start := time.Now()
				claimed, c := benchClaim(b, db, be, acct)
				ds = append(ds, time.Since(start))
				b.StopTimer()
				giveBack(b, db, be, claimed, c)
				b.StartTimer()
			}
			b.StopTimer()
			reportLatencies(b, ds)
			b.ReportMetric(float64(w.fake.TotalRequests())/float64(b.N), "hetzner-requests/op")
		})
	}
}

// benchClaim claims the ready member for a new cluster of acct, as a
// create does: the transaction (the cluster takes the id the member
// reserved, its node labelled with it already), then the backend's claim.
func benchClaim(b *testing.B, db *sqlite.DB, be *Backend, acct cluster.Account) (cluster.Member, cluster.Cluster) {
	ctx := context.Background()
	now := time.Now()
	c := cluster.Cluster{AccountID: acct.ID, Account: acct.Name,
		Spec: cluster.Spec{K8sVersion: flavor.K8sVersion, Size: flavor.Size, MinutesToLive: 60}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	m, err := db.ClaimMember(ctx, c, "hetzner")
	if err != nil {
		b.Fatal(err)
	}
	c.ID = m.ClusterID
	if _, err := be.Claim(ctx, m, c); err != nil {
		b.Fatal(err)
	}
	return m, c
}

// giveBack makes the claimed member ready again without a rebuild (only
// the claim is measured), and does to its cluster what the rebuild's
// bootstrap would: the ownership record goes, and the node is labelled
// with the id reserved for the next claim.
func giveBack(b *testing.B, db *sqlite.DB, be *Backend, m cluster.Member, c cluster.Cluster) {
	ctx := context.Background()
	if _, err := db.UpdateCluster(ctx, c.ID, cluster.Change{To: cluster.Terminated, ReleaseMember: true, MemberState: cluster.MemberDirty}); err != nil {
		b.Fatal(err)
	}
	for _, st := range []cluster.MemberState{cluster.MemberRebuilding, cluster.MemberReady} {
		if err := db.SetMemberState(ctx, m.ID, st, nil, ""); err != nil {
			b.Fatal(err)
		}
	}
	m, err := db.Member(ctx, m.ID)
	if err != nil {
		b.Fatal(err)
	}
	a, err := be.admin(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Clientset().CoreV1().ConfigMaps(kube.SystemNamespace).Delete(ctx, kube.OwnershipConfigMap, metav1.DeleteOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := a.LabelNodes(ctx, m.ReservedID); err != nil {
		b.Fatal(err)
	}
}

// reportLatencies reports the median and the 99th percentile of ds.
func reportLatencies(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkReleaseToReady measures a release: rebuild from the snapshot,
// then the bootstrap of the fresh system on a simulated node with a real
// control plane. sim-s/op is the time the cloud part takes on the fake's
// configured durations (rebuild_server 15 s) with the backend's polling;
// ns/op is the wall time, which is the bootstrap (SSH, k3s start,
// readiness) as the simulated node runs it.
func BenchmarkReleaseToReady(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b, worldOptions{machines: true})
	be := w.backend(http.DefaultTransport)
	m := cluster.Member{ID: "s-release", Flavor: flavor, State: cluster.MemberCreating}
	data, err := be.Provision(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	m.Data, m.State = data, cluster.MemberDirty
	defer func() { be.Destroy(context.Background(), m) }()
	var sim time.Duration
	w.fake.ResetCounts()
	b.ResetTimer()
	for range b.N {
		t0 := w.clock.Now()
		ok, data, err := be.Release(ctx, m)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		sim += w.clock.Now().Sub(t0)
		m.Data = data
	}
	b.ReportMetric(sim.Seconds()/float64(b.N), "sim-s/op")
	b.ReportMetric(float64(w.fake.TotalRequests())/float64(b.N), "hetzner-requests/op")
}

// BenchmarkSteady100PerHour simulates one hour at a steady 100 clusters
// an hour (one every 36 s, living 5–20 min, every third one stopped and
// started once) on a warm pool of 3, with the backend against the fake on
// simulated time: the pool's policy (keep 3 ready, rebuild released
// members, reconcile the inventory every 10 min) is played event by event,
// each operation running to its end before the next (so action polls are
// never batched across operations: an upper bound on requests). It
// reports the Hetzner requests of the hour, which must stay well under the
// 3600 the API allows.
func BenchmarkSteady100PerHour(b *testing.B) {
	var perHour, servers float64
	for range b.N {
		req, srv := simulateHour(b)
		perHour += float64(req)
		servers += float64(srv)
	}
	b.ReportMetric(perHour/float64(b.N), "requests/hour")
	b.ReportMetric(servers/float64(b.N), "servers")
	if perHour/float64(b.N) > 1800 {
		b.Errorf("requests per hour: %.0f, want well under 3600", perHour/float64(b.N))
	}
}

type simEvent struct {
	at   time.Duration
	kind string // arrive, stop, start, leave, reconcile
	n    int    // the cluster
}

func simulateHour(b *testing.B) (requests, servers int) {
	ctx := context.Background()
	w := newWorld(b, worldOptions{})
	be, _ := benchBackend(b, w)
	const target = 3
	var ready []cluster.Member
	inUse := map[int]cluster.Member{}
	next := 0
	provision := func() {
		m := cluster.Member{ID: fmt.Sprintf("s-sim%d", next), Flavor: flavor, State: cluster.MemberCreating}
		next++
		data, err := be.Provision(ctx, m)
		if err != nil {
			b.Fatal(err)
		}
		m.Data, m.State = data, cluster.MemberReady
		ready = append(ready, m)
	}
	for range target {
		provision()
	}
	start := w.clock.Now()
	w.fake.ResetCounts()
	var events []simEvent
	for i := range 100 {
		at := time.Duration(i) * 36 * time.Second
		life := time.Duration(5+5*(i%4)) * time.Minute
		events = append(events, simEvent{at, "arrive", i}, simEvent{at + life, "leave", i})
		if i%3 == 0 {
			events = append(events, simEvent{at + life/3, "stop", i}, simEvent{at + life/3 + 2*time.Minute, "start", i})
		}
	}
	for t := 10 * time.Minute; t <= time.Hour; t += 10 * time.Minute {
		events = append(events, simEvent{t, "reconcile", -1})
	}
	events = slices.DeleteFunc(events, func(e simEvent) bool { return e.at > time.Hour })
	slices.SortStableFunc(events, func(x, y simEvent) int { return int(x.at - y.at) })
	for _, e := range events {
		if d := start.Add(e.at).Sub(w.clock.Now()); d > 0 {
			w.clock.Advance(d)
		}
		switch e.kind {
		case "arrive":
			if len(ready) == 0 {
				provision() // the create waits for a cold member
			}
			m := ready[0]
			ready = ready[1:]
			m.State = cluster.MemberClaimed
			inUse[e.n] = m // claim: Kubernetes calls only
		case "stop":
			if err := be.Stop(ctx, inUse[e.n]); err != nil {
				b.Fatal(err)
			}
		case "start":
			m := inUse[e.n]
			data, err := be.Start(ctx, m)
			if err != nil {
				b.Fatal(err)
			}
			m.Data = data
			inUse[e.n] = m
		case "leave":
			m := inUse[e.n]
			delete(inUse, e.n)
			ok, data, err := be.Release(ctx, m)
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
			m.Data, m.State = data, cluster.MemberReady
			ready = append(ready, m)
		case "reconcile":
			known := slices.Clone(ready)
			for _, m := range inUse {
				known = append(known, m)
			}
			if ghosts, err := be.Reconcile(ctx, known); err != nil || len(ghosts) > 0 {
				b.Fatal(ghosts, err)
			}
		}
		for len(ready) < target {
			provision()
		}
	}
	elapsed := w.clock.Now().Sub(start)
	if elapsed > time.Hour+5*time.Minute {
		b.Fatalf("the simulated hour took %s: operations fell behind", elapsed)
	}
	return w.fake.TotalRequests(), next
}
