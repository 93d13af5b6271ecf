package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

func TestParseTrace(t *testing.T) {
	in := "queued_at,job,minutes,created_at,flavor,repository,workflow\n" +
		"2026-03-02T09:14:20Z,test,12.5,2026-03-02T09:15:00Z,1.36.3/1-mid/privileged,acme/shop,ci\n" +
		",,3,2026-03-02T10:00:00+01:00,,,\n"
	rows, err := ParseTrace(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(rows))
	}
	r := rows[0]
	want := Row{
		Line: 2, CreatedAt: time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC), Lifetime: 12*time.Minute + 30*time.Second,
		Flavor: cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}, HasFlavor: true,
		Repository: "acme/shop", Workflow: "ci", Job: "test", QueuedAt: time.Date(2026, 3, 2, 9, 14, 20, 0, time.UTC),
	}
	if !r.CreatedAt.Equal(want.CreatedAt) || !r.QueuedAt.Equal(want.QueuedAt) {
		t.Errorf("times %v %v, want %v %v", r.CreatedAt, r.QueuedAt, want.CreatedAt, want.QueuedAt)
	}
	r.CreatedAt, r.QueuedAt, want.CreatedAt, want.QueuedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if r != want {
		t.Errorf("row 1 = %+v, want %+v", r, want)
	}
	if r.JobKey() == "" {
		t.Error("row 1 has no job key")
	}
	r2 := rows[1]
	if r2.Line != 3 || r2.HasFlavor || !r2.QueuedAt.IsZero() || r2.JobKey() != "" || r2.Lifetime != 3*time.Minute ||
		!r2.CreatedAt.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("row 2 = %+v", r2)
	}
}

func TestParseTraceErrors(t *testing.T) {
	const ok = "2026-03-02T09:15:00Z"
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"created_at\n", `no column "minutes"`},
		{"minutes\n", `no column "created_at"`},
		{"created_at,minutes,colour\n", `line 1: unknown column "colour"`},
		{"created_at,minutes,minutes\n", `column "minutes" twice`},
		{"created_at,minutes\n", "no rows"},
		{"created_at,minutes\n2026-03-02 09:15,5\n", "line 2, column created_at"},
		{"created_at,minutes\n" + ok + ",5\n" + ok + ",0\n", "line 3, column minutes"},
		{"created_at,minutes\n" + ok + ",-1\n", "line 2, column minutes"},
		{"created_at,minutes\n" + ok + ",NaN\n", "line 2, column minutes"},
		{"created_at,minutes\n" + ok + ",99999\n", "line 2, column minutes"},
		{"created_at,minutes,flavor\n" + ok + ",5,1.36.3/1-mid\n", "line 2, column flavor"},
		{"created_at,minutes,queued_at\n" + ok + ",5,2026-03-02T09:16:00Z\n", "line 2, column queued_at: 2026-03-02T09:16:00Z is after created_at"},
		{"created_at,minutes,queued_at\n" + ok + ",5,2026-02-02T09:16:00Z\n", "line 2, column queued_at"},
		{"created_at,minutes\n" + ok + ",5,6\n", "wrong number of fields"},
		{"created_at,minutes,job\n" + ok + ",5," + strings.Repeat("j", 600) + "\n", "line 2, column job: longer than"},
		{"created_at,minutes\n2020-03-02T09:15:00Z,5\n" + ok + ",5\n", "more than the 366 days"},
	} {
		_, err := ParseTrace(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTrace(%q) = %v, want an error with %q", c.in, err, c.want)
		}
	}
}

func FuzzParseTrace(f *testing.F) {
	for _, s := range []string{
		"created_at,minutes\n2026-03-02T09:15:00Z,5\n",
		"queued_at,job,minutes,created_at,flavor,repository,workflow\n2026-03-02T09:14:20Z,test,12.5,2026-03-02T09:15:00Z,1.36.3/1-mid/privileged,acme/shop,ci\n",
		"created_at,minutes\n\"2026-03-02T09:15:00Z\",1e3\n",
		"minutes,created_at\n0.0001,2026-03-02T09:15:00+02:00\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rows, err := ParseTrace(strings.NewReader(s))
		if err != nil {
			return
		}
		if len(rows) == 0 {
			t.Fatal("no rows and no error")
		}
		for _, r := range rows {
			if r.Lifetime <= 0 || r.Lifetime > MaxMinutes*time.Minute {
				t.Fatalf("lifetime %v", r.Lifetime)
			}
			if !r.QueuedAt.IsZero() && r.QueuedAt.After(r.CreatedAt) {
				t.Fatalf("queued %v after created %v", r.QueuedAt, r.CreatedAt)
			}
		}
		// Whatever parses replays.
		if _, err := Run(rows, Config{Policy: fixedPolicy(1), Prewarm: true, CreateTime: Const(time.Minute), RebuildTime: Const(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	})
}
