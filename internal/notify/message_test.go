package notify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestComposeGolden pins the text and HTML of every kind of mail in
// testdata/*.golden; run with -update after a deliberate change.
func TestComposeGolden(t *testing.T) {
	ci := testCluster()
	ci.Run = cluster.RunMetadata{Repository: "acme/shop", RunID: 4242}
	dropped := testCluster()
	dropped.Spec.KeepCluster = false
	dropped.Spec.Privileged = true
	stopped := testCluster()
	stopped.Status = cluster.Stopped
	stopped.StoppedAt = t0.Add(time.Hour)
	stopped.StoppedExpiresAt = stopped.StoppedAt.Add(168 * time.Hour)
	terminated := ci
	terminated.Status = cluster.Terminated
	dropped2 := stopped
	dropped2.Status = cluster.Terminated
	tests := []struct {
		name string
		n    cluster.Notification
	}{
		{"started", cluster.Notification{Kind: cluster.NotifyStarted, Cluster: ci, Cause: "api", At: t0}},
		{"expiring", cluster.Notification{Kind: cluster.NotifyExpiring, Cluster: dropped, Cause: "ttl", At: t0.Add(50 * time.Minute)}},
		{"stopped", cluster.Notification{Kind: cluster.NotifyStopped, Cluster: stopped, Cause: "ttl", At: t0.Add(time.Hour)}},
		{"terminated", cluster.Notification{Kind: cluster.NotifyTerminated, Cluster: terminated, Cause: "webhook", At: t0.Add(5 * time.Minute)}},
		{"stopped-expiring", cluster.Notification{Kind: cluster.NotifyStoppedExpiring, Cluster: stopped, Cause: "ttl", At: t0.Add(146 * time.Hour)}},
		{"terminated-stopped", cluster.Notification{Kind: cluster.NotifyTerminated, Cluster: dropped2, Cause: "ttl",
			Reason: "it was stopped for longer than the maximum stopped lifetime (168h)", At: t0.Add(169 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := compose(tt.n, "https://smek.example.com")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".txt.golden", "Subject: "+msg.Subject+"\nTo: "+msg.To+"\n\n"+msg.Text)
			golden(t, tt.name+".html.golden", msg.HTML)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestComposeEscapesHTML(t *testing.T) {
	c := testCluster()
	c.Account = `<script>alert(1)</script>`
	msg, err := compose(cluster.Notification{Kind: cluster.NotifyStarted, Cluster: c, At: t0}, "https://smek.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.HTML, "<script>") {
		t.Errorf("the account name reaches the HTML unescaped:\n%s", msg.HTML)
	}
}

func TestComposeUnknownKind(t *testing.T) {
	if _, err := compose(cluster.Notification{Kind: "exploded", Cluster: testCluster()}, "https://x"); err == nil {
		t.Error("got no error for an unknown kind")
	}
}

func TestUntilText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "now"}, {20 * time.Second, "now"}, {40 * time.Second, "in 1 minute"},
		{10 * time.Minute, "in 10 minutes"}, {150 * time.Minute, "in 2h30m"}, {47 * time.Hour, "in 47h00m"},
		{48 * time.Hour, "in 2 days"}, {167*time.Hour + 59*time.Minute, "in 7 days"},
	}
	for _, tt := range tests {
		if got := untilText(tt.d); got != tt.want {
			t.Errorf("untilText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
