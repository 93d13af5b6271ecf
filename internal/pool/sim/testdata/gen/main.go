// Command gen writes the demand traces in internal/pool/sim/testdata, from
// a fixed seed: the same program writes the same files.
//
//	go run ./internal/pool/sim/testdata/gen -out internal/pool/sim/testdata
//
// weekday-ci.csv: a team of about ten developers on four repositories,
// three weeks from Monday 2 March 2026 (UTC). Pushes arrive as a Poisson
// process whose rate follows the working day (none before 07:00, a
// morning and an afternoon peak, a lunch dip, tailing off by 19:00); one
// push in five starts a burst (a rebase of a stack of branches, a merge
// train) of 2–6 more pushes within a few minutes. Every push runs the
// repository's workflow, whose cluster jobs are queued at once and ask
// for their cluster after a runner picks them up and their steps before
// the cluster ran (30 s–3 min). Clusters live log-normally (median 8 min,
// p95 about 25 min). Nights and weekends see only the odd dependency bot
// push.
//
// nightly-batch.csv: two weeks of a nightly matrix: at 02:00 forty jobs
// are queued together, start over five minutes and run 20–40 min.
//
// steady.csv: one week of a steady load, 12 creates an hour around the
// clock, clusters living 5–20 min, no job information.
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"
)

type row struct {
	created, queued             time.Time
	minutes                     float64
	repo, workflow, job, flavor string
}

func main() {
	out := flag.String("out", ".", "folder to write the traces to")
	flag.Parse()
	for name, rows := range map[string][]row{
		"weekday-ci.csv":    weekdayCI(rand.New(rand.NewPCG(15, 1))),
		"nightly-batch.csv": nightlyBatch(rand.New(rand.NewPCG(15, 2))),
		"steady.csv":        steady(rand.New(rand.NewPCG(15, 3))),
	} {
		if err := write(filepath.Join(*out, name), rows); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d rows\n", name, len(rows))
	}
}

var start = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

const flavor = "1.36.3/1-mid/baseline"

// lognormal draws minutes with the given median and p95.
func lognormal(r *rand.Rand, median, p95 float64) float64 {
	sigma := (math.Log(p95) - math.Log(median)) / 1.6448536269514722
	return math.Exp(math.Log(median) + sigma*r.NormFloat64())
}

// peakRate is pushRate's highest rate.
const peakRate = 3.5

// pushRate is the weekday rate of pushes per hour at hour h (UTC).
func pushRate(h float64) float64 {
	switch {
	case h < 7 || h >= 19:
		return 0
	case h < 8:
		return 1
	case h < 12:
		return 3.5
	case h < 13:
		return 1.5
	case h < 17:
		return 3.5
	default:
		return 1.5
	}
}

type workflow struct {
	repo, name string
	jobs       []string
}

var workflows = []workflow{
	{"acme/shop", "ci", []string{"e2e", "integration"}},
	{"acme/shop", "helm", []string{"chart-test"}},
	{"acme/payments", "ci", []string{"e2e"}},
	{"acme/operator", "test", []string{"envtest", "e2e-1.36", "upgrade"}},
	{"acme/infra", "validate", []string{"kind-replacement"}},
}

// run adds the cluster jobs of one workflow run pushed at t.
func run(r *rand.Rand, rows []row, w workflow, t time.Time) []row {
	queued := t.Add(time.Duration(2+r.IntN(8)) * time.Second)
	for _, j := range w.jobs {
		start := queued.Add(time.Duration(30+r.IntN(150)) * time.Second)
		rows = append(rows, row{
			created: start, queued: queued, minutes: math.Min(60, lognormal(r, 8, 25)),
			repo: w.repo, workflow: w.name, job: j, flavor: flavor,
		})
	}
	return rows
}

func weekdayCI(r *rand.Rand) []row {
	var rows []row
	pick := func() workflow {
		// The shop's ci runs most, the infra check least.
		weights := []int{40, 10, 20, 20, 10}
		n := r.IntN(100)
		for i, w := range weights {
			if n < w {
				return workflows[i]
			}
			n -= w
		}
		return workflows[0]
	}
	for day := range 21 {
		d := start.AddDate(0, 0, day)
		weekend := d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
		// The bot: one or two pushes at night, and on weekend days.
		for range 1 + r.IntN(2) {
			t := d.Add(time.Duration(r.IntN(6*60)) * time.Minute)
			rows = run(r, rows, workflows[2+r.IntN(2)], t)
		}
		if weekend {
			continue
		}
		// Thinning: candidate pushes at the peak rate, kept by the hour's.
		for t := d.Add(7 * time.Hour); t.Before(d.Add(19 * time.Hour)); {
			t = t.Add(time.Duration(r.ExpFloat64() / peakRate * float64(time.Hour)))
			h := float64(t.Sub(d)) / float64(time.Hour)
			if r.Float64() >= pushRate(h)/peakRate {
				continue
			}
			rows = run(r, rows, pick(), t)
			if r.IntN(5) == 0 {
				bt := t
				for range 2 + r.IntN(5) {
					bt = bt.Add(time.Duration(10+r.IntN(110)) * time.Second)
					rows = run(r, rows, pick(), bt)
				}
			}
		}
	}
	return rows
}

func nightlyBatch(r *rand.Rand) []row {
	var rows []row
	for day := range 14 {
		queued := start.AddDate(0, 0, day).Add(2 * time.Hour)
		for i := range 40 {
			rows = append(rows, row{
				created: queued.Add(time.Duration(20+r.IntN(300)) * time.Second), queued: queued,
				minutes: 20 + 20*r.Float64(), repo: "acme/operator", workflow: "nightly", job: fmt.Sprintf("matrix-%02d", i), flavor: flavor,
			})
		}
	}
	return rows
}

func steady(r *rand.Rand) []row {
	var rows []row
	for t := start; t.Before(start.AddDate(0, 0, 7)); {
		t = t.Add(time.Duration(r.ExpFloat64() / 12 * float64(time.Hour)))
		rows = append(rows, row{created: t, minutes: 5 + 15*r.Float64()})
	}
	return rows
}

func write(path string, rows []row) error {
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].created.Before(rows[j].created) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	withJobs := rows[0].repo != ""
	if withJobs {
		w.Write([]string{"created_at", "minutes", "flavor", "repository", "workflow", "job", "queued_at"})
	} else {
		w.Write([]string{"created_at", "minutes"})
	}
	for _, r := range rows {
		m := strconv.FormatFloat(r.minutes, 'f', 1, 64)
		if m == "0.0" {
			m = "0.1"
		}
		if withJobs {
			w.Write([]string{r.created.Format(time.RFC3339), m, r.flavor, r.repo, r.workflow, r.job, r.queued.Format(time.RFC3339)})
		} else {
			w.Write([]string{r.created.Format(time.RFC3339), m})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
