package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/smek/action/internal/wire"
)

var listNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func listClusterRow(id string, account int, status string, created time.Time, ttl time.Duration, repo string, pr int) string {
	return fmt.Sprintf(`INSERT INTO clusters (id, account_id, status, k8s_version, size, privileged, keep_cluster, minutes_to_live,
		notification_email, run_repository, run_pull_request, claimed_ms, ready_ms, warm, created_at, expires_at)
		VALUES ('%s', %d, '%s', '1.27.4', '1-mid', 0, 1, %d, 'dev@example.com', '%s', %d, 4, 800, 1, %d, %d)`,
		id, account, status, int(ttl/time.Minute), repo, pr, created.UnixMilli(), created.Add(ttl).UnixMilli())
}

func clusterDB(t *testing.T) string {
	return opsDB(t,
		listClusterRow("c-run001", 1, "running", listNow.Add(-20*time.Minute), time.Hour, "acme/shop", 17),
		listClusterRow("c-stp002", 2, "stopped", listNow.Add(-3*time.Hour), time.Hour, "", 0),
		listClusterRow("c-gone03", 1, "terminated", listNow.Add(-5*time.Hour), time.Hour, "", 0),
		listClusterRow("c-late04", 2, "running", listNow.Add(-70*time.Minute), time.Hour, "", 0),
	)
}

func TestClusterList(t *testing.T) {
	dir := clusterDB(t)
	var out, errOut bytes.Buffer
	if err := clusterList(context.Background(), []string{"--data-dir", dir}, env(nil), &out, &errOut, clockwork.NewFakeClockAt(listNow)); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	want := "" +
		"CLUSTER   ACCOUNT  STATUS   FLAVOR                 CREATED (UTC)        EXPIRES (UTC)        LEFT         CI RUN        \n" +
		"c-run001  team-a   running  1.27.4/1-mid/baseline  2026-03-01 11:40:00  2026-03-01 12:40:00  40m          acme/shop#17  \n" +
		"c-late04  team-b   running  1.27.4/1-mid/baseline  2026-03-01 10:50:00  2026-03-01 11:50:00  overdue 10m  -             \n" +
		"c-stp002  team-b   stopped  1.27.4/1-mid/baseline  2026-03-01 09:00:00  2026-03-01 10:00:00  -            -             \n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestClusterListAllJSON(t *testing.T) {
	dir := clusterDB(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"cluster", "list", "--all", "--json"}, env(map[string]string{"SMEK_DATA_DIR": dir}), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var got wire.ClusterList
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	var ids []string
	for _, c := range got.Clusters {
		ids = append(ids, c.ClusterID+"/"+c.ClusterStatus+"/"+c.Account)
	}
	if want := "c-run001/running/team-a c-late04/running/team-b c-stp002/stopped/team-b c-gone03/terminated/team-a"; strings.Join(ids, " ") != want {
		t.Errorf("got %v, want %s", ids, want)
	}
	c := got.Clusters[0]
	if c.Run == nil || c.Run.Repository != "acme/shop" || c.Timings == nil || c.Timings.TotalMS != 804 || !c.ExpiresAt.Equal(listNow.Add(40*time.Minute)) {
		t.Errorf("got %+v, want the run, timings and deadline of c-run001", c)
	}
	if strings.Contains(out.String(), "kubeconfig") {
		t.Error("the listing carries a kubeconfig")
	}
}

func TestClusterListEmptyAndErrors(t *testing.T) {
	dir := opsDB(t)
	var out bytes.Buffer
	if err := cmdCluster(context.Background(), []string{"list", "--data-dir", dir}, env(nil), &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "No live clusters") {
		t.Errorf("got %q, want a note that there are no live clusters", out.String())
	}
	for _, args := range [][]string{nil, {"delete"}, {"list", "extra", "--data-dir", dir}} {
		if err := cmdCluster(context.Background(), args, env(nil), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("cluster %v: got no error", args)
		}
	}
}
