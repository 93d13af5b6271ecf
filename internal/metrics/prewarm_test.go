package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrewarmsCountsOutcomes(t *testing.T) {
	m := New(Options{})
	p := m.NewPrewarms()
	p.Prewarm("started")
	p.Prewarm("started")
	p.Prewarm("hit")
	want := `
# HELP smek_prewarms_total Pre-warms from queued CI jobs by outcome (started, hit, miss, expired, capped, refused, learned).
# TYPE smek_prewarms_total counter
smek_prewarms_total{outcome="capped"} 0
smek_prewarms_total{outcome="expired"} 0
smek_prewarms_total{outcome="hit"} 1
smek_prewarms_total{outcome="learned"} 0
smek_prewarms_total{outcome="miss"} 0
smek_prewarms_total{outcome="refused"} 0
smek_prewarms_total{outcome="started"} 2
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "smek_prewarms_total"); err != nil {
		t.Fatal(err)
	}
}
