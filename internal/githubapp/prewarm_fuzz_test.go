package githubapp

import (
	"encoding/json"
	"testing"

	"github.com/smek/action/internal/cluster"
)

// unusedStore and unusedPool satisfy the interfaces; planning never calls
// them (a call panics on the nil interface).
type unusedStore struct{ PrewarmStore }
type unusedPool struct{ PrewarmPool }

// FuzzPlanPrewarm plans arbitrary workflow_job payloads with pre-warming
// on: never a panic; a payload is refused only as EINVALID; a queued job
// is planned only with the ids a pre-warm needs.
func FuzzPlanPrewarm(f *testing.F) {
	for _, name := range []string{"workflow_job.queued.json", "workflow_job.completed.json", "workflow_job.in_progress.json"} {
		f.Add(compact(f, name))
	}
	f.Add([]byte(`{"action":"queued","installation":{"id":1},"repository":{"id":1},"workflow_job":{"id":1,"run_id":1,"name":"a","workflow_name":null}}`))
	f.Add([]byte(`{"action":"queued","installation":{"id":1},"repository":{"id":1},"workflow_job":{"id":-1,"run_id":1,"name":"a"}}`))
	f.Add([]byte(`{"action":"completed","installation":{"id":1},"repository":{"id":1},"workflow_job":{"id":1,"run_id":1,"run_attempt":1,"runner_name":null}}`))
	pw, err := NewPrewarmer(PrewarmConfig{Pool: unusedPool{}, Store: unusedStore{}})
	if err != nil {
		f.Fatal(err)
	}
	a := &App{prewarm: pw, log: pw.log, clock: pw.clock}
	f.Fuzz(func(t *testing.T, body []byte) {
		run, reason, err := a.planWorkflowJob("fuzz", body)
		if err != nil {
			if cluster.ErrorCode(err) != cluster.EINVALID {
				t.Fatalf("refused with %v, want EINVALID", err)
			}
			return
		}
		if run == nil && reason == "" {
			t.Fatal("nothing to do and no reason")
		}
		var e workflowJobEvent
		if run == nil || json.Unmarshal(body, &e) != nil || e.Action != "queued" {
			return
		}
		if e.installationID() == 0 || e.Repository == nil || e.Repository.ID == 0 || e.WorkflowJob == nil ||
			e.WorkflowJob.ID <= 0 || e.WorkflowJob.RunID <= 0 || e.WorkflowJob.Name == "" {
			t.Fatalf("queued job planned without the ids a pre-warm needs: %s", body)
		}
	})
}
