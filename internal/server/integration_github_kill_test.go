package server_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/client"
	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/githubapp"
	"github.com/smek/action/internal/server"
	"github.com/smek/action/internal/smektest"
	"github.com/smek/action/internal/wire"
)

// The child provisioner of TestIntegrationGitHubKilledProvisionerLosesNoDelivery
// runs this test binary again with these variables.
const (
	childDataDirEnv = "SMEK_TEST_CHILD_DATA_DIR"
	childListening  = "child listening on "
	childBlocked    = "child cleanup blocked"
)

// TestIntegrationGitHubKilledProvisionerLosesNoDelivery kills a
// provisioner (SIGKILL: no drain, no last write) while the App embedded in
// it has deliveries in progress and queued, starts a new one on the same
// data folder, and checks that every delivery's work is done: every
// cluster ended.
func TestIntegrationGitHubKilledProvisionerLosesNoDelivery(t *testing.T) {
	if os.Getenv(childDataDirEnv) != "" {
		t.Skip("the child provisioner runs TestGitHubKillChild")
	}
	// A short folder: the local backend's unix sockets live under it.
	dir, err := os.MkdirTemp("", "smek-kill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// The clusters the deliveries are about, made by a first server.
	first := smektest.Start(t, smektest.Options{DataDir: dir})
	acme := first.Token("acme", smektest.TokenOptions{MaxClusters: 10})
	runs := []wire.RunMetadata{
		{RepositoryID: 300029405, RunID: 8_000_001, RunAttempt: 1},
		{RepositoryID: 300029405, RunID: 8_000_002, RunAttempt: 1},
		{RepositoryID: 300029405, RunID: 8_000_003, RunAttempt: 1},
		{RepositoryID: 300029405, RunID: 8_000_004, RunAttempt: 1},
		{RepositoryID: 300029405, RunID: 8_000_005, RunAttempt: 1},
		{RepositoryID: 300029405, RunID: 8_000_006, RunAttempt: 1},
	}
	// The child has four workers: the first four deliveries are in
	// progress when it is killed, the last two still queued. Runs 1, 5
	// and 6 have clusters.
	withCluster := map[int]bool{0: true, 4: true, 5: true}
	clusters := map[string]string{} // delivery → cluster
	for i := range runs {
		if withCluster[i] {
			clusters[fmt.Sprintf("killed-%d", i)] = createForRun(t, first, acme, runs[i]).ClusterID
		}
	}
	first.Stop()

	// The provisioner as a process of its own, whose App cannot finish a
	// cleanup: it lists clusters forever.
	child := exec.Command(os.Args[0], "-test.run=^TestGitHubKillChild$", "-test.v", "-test.timeout=10m")
	child.Env = append(os.Environ(), childDataDirEnv+"="+dir, "SMEK_KUBE_BIN="+smektest.KubeBin(t))
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			child.Process.Kill()
			child.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the child ended before printing %q", prefix)
				}
				if rest, found := strings.CutPrefix(l, prefix); found {
					return rest
				}
			case <-timeout:
				t.Fatalf("the child did not print %q", prefix)
			}
		}
	}
	hook := next(childListening) + githubapp.WebhookPath
	for i, run := range runs {
		status, b := deliver(t, hook, ghSecret, "workflow_run", fmt.Sprintf("killed-%d", i), workflowRunCompleted(t, run))
		accepted(t, status, b)
	}
	for range 4 {
		next(childBlocked)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed = true
	child.Wait()
	go func() {
		for range lines {
		}
	}()

	// A new provisioner on the same data folder does the work.
	res := newResults()
	second := smektest.Start(t, smektest.Options{DataDir: dir, Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubOnDone = res.done
	}})
	for i := range runs {
		res.wait(t, fmt.Sprintf("killed-%d", i))
	}
	c, err := client.New(second.URL, acme)
	if err != nil {
		t.Fatal(err)
	}
	for delivery, id := range clusters {
		cl, err := c.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cl.ClusterStatus != "terminated" && cl.ClusterStatus != "terminating" {
			t.Errorf("cluster %s of delivery %s: got %s, want terminated", id, delivery, cl.ClusterStatus)
		}
	}
}

// TestGitHubKillChild is the provisioner that
// TestIntegrationGitHubKilledProvisionerLosesNoDelivery kills: it serves
// the App's webhook on the data folder it is given, and its cleanup
// blocks in the cluster listing until the process dies.
func TestGitHubKillChild(t *testing.T) {
	dir := os.Getenv(childDataDirEnv)
	if dir == "" {
		t.Skip("run by TestIntegrationGitHubKilledProvisionerLosesNoDelivery")
	}
	smek := smektest.Start(t, smektest.Options{DataDir: dir, Configure: func(c *server.Config) {
		c.GitHubWebhookSecret = ghSecret
		c.GitHubClusters = func(c githubapp.Clusters) githubapp.Clusters { return blockedList{c} }
	}})
	fmt.Printf("%s%s\n", childListening, smek.URL)
	select {} // until killed
}

// blockedList is Clusters whose List never answers.
type blockedList struct{ githubapp.Clusters }

func (blockedList) List(ctx context.Context, _ int64, _ cluster.Filter) ([]cluster.Cluster, error) {
	fmt.Println(childBlocked)
	<-ctx.Done()
	return nil, ctx.Err()
}
