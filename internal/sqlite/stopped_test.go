package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

// A stop records the stopped deadline; the sweeper's queries find the
// cluster a day before it (once) and at it; a start or a terminate clears
// it.
func TestStoppedDeadline(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "keeper", 5)
	ids := runningClusters(t, db, a, 0, 2)
	until := claimT0.Add(168 * time.Hour)
	for _, id := range ids {
		c, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped,
			MemberState: cluster.MemberStopped, StoppedUntil: until})
		if err != nil {
			t.Fatal(err)
		}
		if !c.StoppedExpiresAt.Equal(until) {
			t.Errorf("stop answered stopped-expires-at %v, want %v", c.StoppedExpiresAt, until)
		}
	}
	if c, err := db.Cluster(ctx, 0, ids[0]); err != nil || !c.StoppedExpiresAt.Equal(until) || !c.StoppedAt.Equal(claimT0) {
		t.Errorf("stored: stopped-at %v, stopped-expires-at %v (%v); want %v and %v", c.StoppedAt, c.StoppedExpiresAt, err, claimT0, until)
	}
	all, err := db.AllClusters(ctx, false)
	if err != nil || len(all) != 2 || !all[0].StoppedExpiresAt.Equal(until) {
		t.Errorf("operator's list: %+v (%v), want the stopped deadline", all, err)
	}

	// newClaim has no notification-email; give the first one an address.
	if _, err := db.w.ExecContext(ctx, `UPDATE clusters SET notification_email = 'o@example.com' WHERE id = ?`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if got, err := db.StoppedExpiringClusters(ctx, until.Add(-time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("expiring before the horizon: %v, %v; want none", got, err)
	}
	got, err := db.StoppedExpiringClusters(ctx, until)
	if err != nil || len(got) != 1 || got[0].ID != ids[0] {
		t.Fatalf("expiring at the horizon: %+v, %v; want %s only (the other has no address)", got, err, ids[0])
	}
	for i, want := range []bool{true, false} {
		if marked, err := db.MarkStoppedWarned(ctx, ids[0]); err != nil || marked != want {
			t.Errorf("mark warned #%d: %t, %v; want %t", i+1, marked, err, want)
		}
	}
	if got, err := db.StoppedExpiringClusters(ctx, until); err != nil || len(got) != 0 {
		t.Errorf("expiring after the warning: %v, %v; want none", got, err)
	}
	if got, err := db.DueStoppedClusters(ctx, until.Add(-time.Millisecond)); err != nil || len(got) != 0 {
		t.Errorf("due before the deadline: %v, %v; want none", got, err)
	}
	if got, err := db.DueStoppedClusters(ctx, until); err != nil || len(got) != 2 {
		t.Errorf("due at the deadline: %v, %v; want both", got, err)
	}

	// A start clears the deadline and the warning; the next stop sets both
	// afresh.
	c, err := db.UpdateCluster(ctx, ids[0], cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running,
		MemberState: cluster.MemberClaimed, MemberData: []byte(`{"port": 2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !c.StoppedExpiresAt.IsZero() {
		t.Errorf("started cluster has stopped-expires-at %v", c.StoppedExpiresAt)
	}
	if s, err := db.Member(ctx, c.MemberID); err != nil || string(s.Data) != `{"port": 2}` || s.State != cluster.MemberClaimed {
		t.Errorf("started member: state %s data %s (%v), want claimed with the new data", s.State, s.Data, err)
	}
	later := until.Add(time.Hour)
	if _, err := db.UpdateCluster(ctx, ids[0], cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped,
		MemberState: cluster.MemberStopped, StoppedUntil: later}); err != nil {
		t.Fatal(err)
	}
	if got, err := db.StoppedExpiringClusters(ctx, later); err != nil || len(got) != 1 {
		t.Errorf("stopped again: expiring %v, %v; want it warned again", got, err)
	}
	// An extend of a stopped cluster ("updated") keeps the stop's times.
	if c, err := db.UpdateCluster(ctx, ids[0], cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Stopped,
		ExpiresAt: claimT0.Add(3 * time.Hour)}); err != nil || !c.StoppedExpiresAt.Equal(later) {
		t.Errorf("extend of a stopped cluster: stopped-expires-at %v (%v), want %v kept", c.StoppedExpiresAt, err, later)
	}
	c, err = db.UpdateCluster(ctx, ids[1], cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Terminated,
		ReleaseMember: true, MemberState: cluster.MemberDirty})
	if err != nil || !c.StoppedExpiresAt.IsZero() {
		t.Errorf("terminated cluster: stopped-expires-at %v (%v), want none", c.StoppedExpiresAt, err)
	}
}

// Clusters stopped before stopped deadlines existed get one, once.
func TestSetMissingStoppedDeadlines(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "old", 5)
	ids := stoppedClusters(t, db, a, 0, 2) // no StoppedUntil: as before
	until := claimT0.Add(168 * time.Hour)
	if n, err := db.SetMissingStoppedDeadlines(ctx, until); err != nil || n != 2 {
		t.Fatalf("first: %d, %v; want 2", n, err)
	}
	if n, err := db.SetMissingStoppedDeadlines(ctx, until.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second: %d, %v; want 0 (they have one)", n, err)
	}
	if c, err := db.Cluster(ctx, 0, ids[0]); err != nil || !c.StoppedExpiresAt.Equal(until) {
		t.Errorf("got %v, %v; want %v", c.StoppedExpiresAt, err, until)
	}
}

// Undoing a stop whose backend step failed puts the cluster back to
// running even when a start took its place meanwhile: it never left.
func TestUndoSkipsTheLimits(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a := claimAccount(t, db, "undo", 1)
	id := runningClusters(t, db, a, 0, 1)[0]
	if _, err := db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped}); err != nil {
		t.Fatal(err)
	}
	runningClusters(t, db, a, 10, 1) // takes the only place
	back := cluster.Change{From: []cluster.Status{cluster.Stopped}, To: cluster.Running, MemberState: cluster.MemberClaimed}
	if _, err := db.UpdateCluster(ctx, id, back); cluster.ErrorCode(err) != cluster.ELIMIT {
		t.Fatalf("start: got %v, want the limit", err)
	}
	back.Undo = true
	if c, err := db.UpdateCluster(ctx, id, back); err != nil || c.Status != cluster.Running {
		t.Errorf("undo: %s, %v; want running", c.Status, err)
	}
}

// A new account may keep cluster.DefaultMaxStoppedClusters; the limit can
// be set, also to 0: then no stop is allowed.
func TestMaxStoppedClusters(t *testing.T) {
	db := openClaimDB(t)
	ctx := context.Background()
	a, err := db.EnsureAccount(ctx, "keeper", AccountLimits{})
	if err != nil || a.MaxStoppedClusters != cluster.DefaultMaxStoppedClusters {
		t.Fatalf("new account: %+v, %v; want %d stopped clusters", a, err, cluster.DefaultMaxStoppedClusters)
	}
	zero := 0
	if a, err = db.EnsureAccount(ctx, "keeper", AccountLimits{MaxStoppedClusters: &zero}); err != nil || a.MaxStoppedClusters != 0 || a.MaxClusters != cluster.DefaultMaxClusters {
		t.Fatalf("set to 0: %+v, %v", a, err)
	}
	id := runningClusters(t, db, a, 0, 1)[0]
	_, err = db.UpdateCluster(ctx, id, cluster.Change{From: []cluster.Status{cluster.Running}, To: cluster.Stopped, MemberState: cluster.MemberStopped})
	if cluster.ErrorCode(err) != cluster.ELIMIT || cluster.ErrorMessage(err) != cluster.StoppedLimitError(0).Message {
		t.Errorf("stop with max-stopped-clusters 0: got %v, want %q", err, cluster.StoppedLimitError(0).Message)
	}
	minus := -1
	if _, err := db.EnsureAccount(ctx, "keeper", AccountLimits{MaxStoppedClusters: &minus}); cluster.ErrorCode(err) != cluster.EINVALID {
		t.Errorf("negative max-stopped-clusters: got %v, want invalid", err)
	}
	p, err := db.PrincipalByTokenHash(ctx, tokHash(tokenFor(t, db, a.ID)))
	if err != nil || p.Account.MaxStoppedClusters != 0 {
		t.Errorf("principal: %+v, %v; want max-stopped-clusters 0", p.Account, err)
	}
}

func tokenFor(t *testing.T, db *DB, accountID int64) string {
	t.Helper()
	secret := "smek_ddddddddstoppedlimit"
	tokCreate(t, db, accountID, secret, false, false)
	return secret
}
