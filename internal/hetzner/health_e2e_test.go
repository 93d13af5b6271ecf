package hetzner

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/fake/hcloudfake/k3snode"
	"github.com/smek/action/internal/lifecycle"
)

// notifications records what the lifecycle tells owners.
type notifications struct {
	mu  sync.Mutex
	got []cluster.Notification
}

func (n *notifications) Notify(_ context.Context, x cluster.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
}

func (n *notifications) kinds() []cluster.NotificationKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []cluster.NotificationKind
	for _, x := range n.got {
		out = append(out, x.Kind)
	}
	return out
}

// TestRebootedClusterComesBackOrIsReportedLost: Hetzner's host
// maintenance reboots a claimed server (here: the reset action, which
// power-cycles the machine). k3s is enabled at bootstrap, so it comes
// back by itself and the pool's health check finds the cluster healthy.
// When k3s does not come back (disabled, then rebooted), the cluster
// fails LostAfter checks in a row: it is marked failed with the reason,
// the event is recorded, its member is released, and the owner is told.
func TestRebootedClusterComesBackOrIsReportedLost(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, worldOptions{machines: true})
	r := w.start(runOptions{target: 1, max: 1, lostAfter: 2})
	member := r.await("the pool filled", settled(1))[0]
	mail := &notifications{}
	life := lifecycle.New(r.db, r.pool, []string{"1.36.3"}, lifecycle.Config{Notifier: mail})
	p := cluster.Principal{Account: r.account(), Actor: "token:e2e"}
	email := "owner@example.com"
	created, err := life.Create(ctx, p, cluster.CreateInput{NotificationEmail: &email})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	c := created.Cluster
	id := mustData(t, member.Data).ServerID
	client := hcloud.NewClient(hcloud.WithEndpoint(w.fake.URL), hcloud.WithToken("t"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	node := w.fake.MachineOf(id).(*k3snode.Node)

	reboot := func() {
		t.Helper()
		if _, _, err := client.Server.Reset(ctx, &hcloud.Server{ID: id}); err != nil {
			t.Fatalf("reset: %v", err)
		}
		w.clock.Advance(time.Minute)
		if _, _, err := client.Server.GetByID(ctx, id); err != nil { // the fake settles the action
			t.Fatal(err)
		}
		<-node.Booted()
	}
	check := func() []string {
		t.Helper()
		lost, err := r.pool.CheckHealth(ctx)
		if err != nil {
			t.Fatalf("health check: %v", err)
		}
		return lost
	}

	reboot()
	if !node.K3sRunning() {
		t.Fatalf("k3s did not come back after the reboot of a bootstrapped server")
	}
	for i := range 3 {
		if lost := check(); len(lost) != 0 {
			t.Fatalf("check %d after a reboot: lost %v, want none", i+1, lost)
		}
	}
	kc, err := life.Kubeconfig(ctx, p, c.ID)
	if err != nil {
		t.Fatalf("kubeconfig after the reboot: %v", err)
	}
	mustKubectl(t, kc.Kubeconfig.YAML, "get", "configmaps")

	// k3s disabled and the server rebooted: nothing brings it back.
	conn, err := r.backend.dial(ctx, &hcloud.Server{ID: id}, &data{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = runSSH(ctx, conn, "systemctl disable k3s", nil, &out)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	reboot()
	if lost := check(); len(lost) != 0 {
		t.Fatalf("first failed check: lost %v, want none yet", lost)
	}
	if got, _ := life.Get(ctx, p, c.ID); got.Status != cluster.Running {
		t.Errorf("after one failed check: %s, want still running", got.Status)
	}
	if lost := check(); len(lost) != 1 || lost[0] != member.ID {
		t.Fatalf("second failed check: lost %v, want [%s]", lost, member.ID)
	}
	got, err := life.Get(ctx, p, c.ID)
	if err != nil || got.Status != cluster.Failed {
		t.Fatalf("lost cluster: %s, %v, want failed", got.Status, err)
	}
	list, err := life.List(ctx, p, cluster.Filter{})
	if err != nil || len(list) != 1 || list[0].Status != cluster.Failed {
		t.Errorf("list: %v, %v, want the cluster failed", list, err)
	}
	events, err := life.Events(ctx, p, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var recorded bool
	for _, e := range events {
		if e.Type == string(cluster.Failed) && e.Cause == "reconciler" && strings.Contains(e.Message, "health checks") {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("no failed event with the reason in %+v", events)
	}
	if kinds := mail.kinds(); len(kinds) != 2 || kinds[1] != cluster.NotifyFailed {
		t.Errorf("notifications: got %v, want started, failed", kinds)
	}
	ms := r.await("the lost member released and rebuilt", func(ms []cluster.Member) bool {
		return memberStates(ms)[member.ID] == cluster.MemberReady
	})
	checkNeverDirtyToReady(t, r.db, ms[0].ID)
}
