package sqlite

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

// codeSuspended is the stable problem code of a suspended account.
const codeSuspended cluster.Code = "suspended"

// runningClusters claims n servers for account a and records the clusters
// as running; the account's limit must allow n.
func runningClusters(t *testing.T, db *DB, a cluster.Account, first, n int) []cluster.ID {
	t.Helper()
	ctx := context.Background()
	readyServers(t, db, "local", claimFlavor, n)
	var ids []cluster.ID
	for i := range n {
		c := newClaim(a, first+i, claimFlavor)
		if _, err := db.ClaimMember(ctx, c, "local"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdateCluster(ctx, c.ID, cluster.Change{From: []cluster.Status{cluster.Pending}, To: cluster.Running}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

// stoppedClusters records n clusters of account a as stopped.
func stoppedClusters(t *testing.T, db *DB, a cluster.Account, first, n int) []cluster.ID {
	t.Helper()
	ids := runningClusters(t, db, a, first, n)
	for _, id := range ids {
		if _, err := db.UpdateCluster(context.Background(), id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// changeAll applies one change per cluster, all released at once.
func changeAll(t *testing.T, db *DB, ids []cluster.ID, ch cluster.Change) []error {
	t.Helper()
	errs := make([]error, len(ids))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			<-start
			_, errs[i] = db.UpdateCluster(context.Background(), id, ch)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func statusOf(t *testing.T, db *DB, id cluster.ID) (cluster.Status, cluster.MemberState) {
	t.Helper()
	c, err := db.Cluster(context.Background(), 0, id)
	if err != nil {
		t.Fatal(err)
	}
	s, err := db.Member(context.Background(), c.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	return c.Status, s.State
}

// Issue 12: with max-clusters 1, three stopped clusters started at once
// must not all run. The limit is checked in the transaction that moves the
// cluster and its member, as the claim does.
func TestStartLimitUnderConcurrency(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "one", 3)
	ids := stoppedClusters(t, db, a, 0, 3)
	claimAccount(t, db, "one", 1)

	errs := changeAll(t, db, ids, cluster.Change{
		From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed,
		ExpiresAt: claimT0.Add(2 * time.Hour), Cause: "api",
	})
	started, limited := 0, 0
	for i, err := range errs {
		switch cluster.ErrorCode(err) {
		case "":
			started++
		case cluster.ELIMIT:
			limited++
			if !strings.Contains(cluster.ErrorMessage(err), "limit of 1 cluster") {
				t.Errorf("refused start: got %q, want it to name the limit of 1", cluster.ErrorMessage(err))
			}
			// A refused start moves nothing: the cluster and its member
			// stay stopped.
			if st, srv := statusOf(t, db, ids[i]); st != cluster.Stopped || srv != cluster.MemberStopped {
				t.Errorf("refused start of %s: cluster %s, member %s; want both stopped", ids[i], st, srv)
			}
		default:
			t.Errorf("start of %s: got %v, want success or the limit", ids[i], err)
		}
	}
	if started != 1 || limited != 2 {
		t.Errorf("got %d started and %d refused, want 1 and 2", started, limited)
	}
	if n, err := db.CountLive(ctx, a.ID); err != nil || n != 1 {
		t.Errorf("CountLive = %d, %v; want 1", n, err)
	}
}

// A pending cluster holds its place: a start may not take it.
func TestStartCountsPendingClusters(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "two", 2)
	stopped := stoppedClusters(t, db, a, 0, 1)[0]
	readyServers(t, db, "local", claimFlavor, 2)
	for i := range 2 {
		if _, err := db.ClaimMember(ctx, newClaim(a, 10+i, claimFlavor), "local"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.UpdateCluster(ctx, stopped, cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed})
	if cluster.ErrorCode(err) != cluster.ELIMIT {
		t.Errorf("start with two pending clusters and a limit of 2: got %v, want the limit", err)
	}
}

// A new account may keep 5 stopped clusters. Six stops at once: five win,
// the sixth is refused with a message that names the limit, and nothing of
// it moves. Terminating a stopped cluster makes room.
func TestStopLimitUnderConcurrency(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "keeper", 10)
	ids := runningClusters(t, db, a, 0, 6)

	errs := changeAll(t, db, ids, cluster.Change{
		From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped, Cause: "api",
	})
	var refused cluster.ID
	stopped := 0
	for i, err := range errs {
		switch cluster.ErrorCode(err) {
		case "":
			stopped++
		case cluster.ELIMIT:
			refused = ids[i]
			if msg := cluster.ErrorMessage(err); !strings.Contains(msg, "5 stopped clusters") || !strings.Contains(msg, "max-stopped-clusters") {
				t.Errorf("refused stop: got %q, want it to name the limit of 5 stopped clusters (max-stopped-clusters)", msg)
			}
		default:
			t.Errorf("stop of %s: got %v, want success or the limit", ids[i], err)
		}
	}
	if stopped != 5 || refused == "" {
		t.Fatalf("got %d stopped (refused %q), want 5 and one refused", stopped, refused)
	}
	if st, srv := statusOf(t, db, refused); st != cluster.Running || srv != cluster.MemberClaimed {
		t.Errorf("refused stop: cluster %s, member %s; want running and claimed", st, srv)
	}

	// Terminating is never limited, and it makes room for the next stop.
	for _, id := range ids {
		if id == refused {
			continue
		}
		if _, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running, cluster.Stopped}, To: cluster.Terminated,
			ReleaseMember: true, MemberState: cluster.MemberDirty}); err != nil {
			t.Fatal(err)
		}
		break
	}
	if _, err := db.UpdateCluster(ctx, refused, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped}); err != nil {
		t.Errorf("stop after terminating a stopped cluster: %v", err)
	}
}

// max-clusters 0 suspends an account: the claim and a start are refused
// as suspended (not as a full limit), while stopping and terminating what
// it has still work.
func TestSuspendedAccount(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "paused", 3)
	stopped := stoppedClusters(t, db, a, 0, 1)[0]
	running := runningClusters(t, db, a, 10, 1)[0]
	readyServers(t, db, "local", claimFlavor, 1)
	claimAccount(t, db, "paused", 0)

	_, err := db.ClaimMember(ctx, newClaim(a, 20, claimFlavor), "local")
	if cluster.ErrorCode(err) != codeSuspended || !strings.Contains(cluster.ErrorMessage(err), "max-clusters") {
		t.Errorf("claim of a suspended account: got %v (%s), want %q naming max-clusters", err, cluster.ErrorCode(err), codeSuspended)
	}
	_, err = db.UpdateCluster(ctx, stopped, cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed})
	if cluster.ErrorCode(err) != codeSuspended {
		t.Errorf("start on a suspended account: got %v (%s), want %q", err, cluster.ErrorCode(err), codeSuspended)
	}
	if _, err := db.UpdateCluster(ctx, running, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped}); err != nil {
		t.Errorf("stop on a suspended account: %v", err)
	}
	if _, err := db.UpdateCluster(ctx, stopped, cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Terminated, ReleaseMember: true, MemberState: cluster.MemberDirty}); err != nil {
		t.Errorf("terminate on a suspended account: %v", err)
	}
}

// Limits are checked where they are stored: a negative limit, or a
// maximum minutes-to-live of 0, is bad input that names the limit.
func TestEnsureAccountRefusesBadLimits(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	minus, zero := -1, 0
	tests := []struct {
		name   string
		limits AccountLimits
		field  string
	}{
		{"negative max-clusters", AccountLimits{MaxClusters: &minus}, "max-clusters"},
		{"negative max-minutes-to-live", AccountLimits{MaxMinutesToLive: &minus}, "max-minutes-to-live"},
		{"zero max-minutes-to-live", AccountLimits{MaxMinutesToLive: &zero}, "max-minutes-to-live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.EnsureAccount(ctx, "bad", tt.limits)
			e, ok := errors.AsType[*cluster.Error](err)
			if !ok || e.Code != cluster.EINVALID || e.Field != tt.field || !strings.Contains(e.Message, tt.field) {
				t.Errorf("got %v, want invalid input naming %s", err, tt.field)
			}
		})
	}
	if as, err := db.Accounts(ctx); err != nil || len(as) != 0 {
		t.Errorf("refused limits created accounts %+v (%v)", as, err)
	}
}
