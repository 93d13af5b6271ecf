package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// TestLostClusterIsFailedInTheAPI (local backend): a running cluster whose
// control plane ends behind SMEK's back fails the pool's health checks;
// after LostAfter of them in a row it is failed in /v1 and in GET /list,
// and its events say why.
func TestLostClusterIsFailedInTheAPI(t *testing.T) {
	ctx := context.Background()
	smek := smektest.Start(t, smektest.Options{PoolSize: 1})
	token := smek.Token("lost", smektest.TokenOptions{})
	smek.WaitReady(1, false)
	c := mustJSON[wire.Cluster](t, 201, "POST", smek.URL+"/v1/clusters", token, `{}`)
	rec, err := smek.DB.Cluster(ctx, 0, cluster.ID(c.ClusterID))
	if err != nil {
		t.Fatal(err)
	}
	member, err := smek.DB.Member(ctx, rec.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	if err := smek.Pool.Backend().Stop(ctx, member); err != nil { // its processes end; SMEK still records it running
		t.Fatal(err)
	}
	for range 4 { // pool.Config's default LostAfter
		if _, err := smek.Pool.CheckHealth(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustJSON[wire.Cluster](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID, token, ""); got.ClusterStatus != "failed" {
		t.Errorf("/v1: %s, want failed", got.ClusterStatus)
	}
	list := mustJSON[[]wire.ListItem](t, 200, "GET", smek.URL+"/list", token, "")
	if len(list) != 1 || list[0].ClusterStatus != "failed" {
		t.Errorf("/list: %+v, want the cluster failed", list)
	}
	evs := mustJSON[wire.EventList](t, 200, "GET", smek.URL+"/v1/clusters/"+c.ClusterID+"/events", token, "")
	last := evs.Events[len(evs.Events)-1]
	if last.Type != "failed" || last.Cause != "reconciler" || !strings.Contains(last.Message, "health checks") {
		t.Errorf("last event %+v, want failed by the reconciler, saying why", last)
	}
}
