package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/local"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestCreateCutAfterTheClaimEndsAtRestart: the provisioner stops between a
// create's claim transaction and the writes to the cluster (ownership
// record, tenant token, the record that it runs). The claim transaction is
// the one truth: the next start fails the half-made cluster before it
// serves, its member is cleaned and replaced, the account's place is free
// again, and the cluster's id is never handed out again.
func TestCreateCutAfterTheClaimEndsAtRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1, DataDir: dir})
	token := smek.Token("cut", smektest.TokenOptions{MaxClusters: 1})
	smek.WaitReady(1, false)
	acct, err := smek.DB.AccountByName(ctx, "cut")
	if err != nil {
		t.Fatal(err)
	}
	// What a create has done when the process ends right after its claim
	// transaction: the cluster pending on a claimed member, with the id
	// the member reserved.
	now := time.Now()
	m, err := smek.DB.ClaimMember(ctx, cluster.Cluster{
		AccountID: acct.ID, Account: acct.Name, Status: cluster.Pending, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Spec: cluster.Spec{K8sVersion: local.Version, Size: cluster.SizeMid, MinutesToLive: 60},
	}, "local")
	if err != nil {
		t.Fatal(err)
	}
	cut := string(m.ClusterID)
	if cut == "" || m.ReservedID != m.ClusterID {
		t.Fatalf("claimed member %+v: the cluster should take the member's reserved id", m)
	}
	smek.Stop()

	smek2 := smektest.Start(t, smektest.Options{PoolSize: 1, DataDir: dir})
	c := mustJSON[wire.Cluster](t, 200, "GET", smek2.URL+"/v1/clusters/"+cut, token, "")
	if c.ClusterStatus != string(cluster.Failed) {
		t.Fatalf("cut create after a restart: %s, want failed", c.ClusterStatus)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek2.URL+"/v1/clusters/"+cut+"/events", token, "")
	if last := evs.Events[len(evs.Events)-1]; last.To != string(cluster.Failed) || !strings.Contains(last.Message, "stopped while the cluster was being created") {
		t.Errorf("last event %+v, want failed because the provisioner stopped", last)
	}
	if got, err := smek2.DB.Member(ctx, m.ID); err != nil || got.State == cluster.MemberClaimed || got.State == cluster.MemberReady {
		t.Errorf("the cut create's member: %+v, %v; want it released to be cleaned", got, err)
	}
	// The account (max 1 cluster) has its place back, on a fresh member.
	smek2.WaitReady(1, false)
	fresh := mustJSON[wire.Cluster](t, 201, "POST", smek2.URL+"/v1/clusters", token, `{"wait": "3m"}`)
	if fresh.ClusterID == cut {
		t.Fatalf("the id %s was handed out twice", cut)
	}
	if out, err := kubectl(t, writeKubeconfig(t, fresh.Kubeconfig), "get", "nodes", "-L", "smek-cluster-id"); err != nil || !strings.Contains(out, fresh.ClusterID) {
		t.Errorf("node of %s: %v: %s", fresh.ClusterID, err, out)
	}
}
