package sim

import (
	"math"
	"sort"
	"time"

	"github.com/smek/action/internal/cluster"
	"github.com/smek/action/internal/cost"
)

// Clairvoyant is a reference point, not a policy: what the trace costs a
// pool that knows every create in advance and whose servers are ready the
// instant they are created. Each create takes a server whose paid hour is
// still running when it arrives (the one that adds the fewest paid hours,
// then the one whose paid hour ends first) or a new server; a server is
// deleted when its paid hour ends with no create for it. Nothing waits and
// nothing builds, so what it pays beyond the busy hours is the least idle
// time hourly billing forces on this trace with this greedy choice (a
// cleverer assignment can do somewhat better; no policy can do much
// better, since every policy also waits for servers to boot).
func Clairvoyant(rows []Row, cfg Config) (Result, error) {
	if err := checkSpan(rows); err != nil {
		return Result{}, err
	}
	type server struct {
		f             cluster.Flavor
		created, free time.Time
	}
	type job struct {
		f          cluster.Flavor
		start, end time.Time
	}
	jobs := make([]job, len(rows))
	for i, r := range rows {
		f := cfg.Flavor
		if r.HasFlavor {
			f = r.Flavor
		}
		jobs[i] = job{f: f, start: r.CreatedAt, end: r.CreatedAt.Add(r.Lifetime)}
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].start.Before(jobs[j].start) })
	paidHours := func(created, until time.Time) int {
		return int(cost.PaidHourEnd(created, until).Sub(created) / time.Hour)
	}
	var servers []*server
	var busy time.Duration
	res := Result{Policy: "clairvoyant", Creates: len(jobs), WarmRatio: 1, Start: jobs[0].start}
	for _, j := range jobs {
		busy += j.end.Sub(j.start)
		var best *server
		bestExtra := paidHours(j.start, j.end)
		for _, s := range servers {
			// Alive at j.start: free by then, its paid hour not over.
			if s.f != j.f || s.free.After(j.start) || !j.start.Before(cost.PaidHourEnd(s.created, s.free)) {
				continue
			}
			extra := paidHours(s.created, j.end) - paidHours(s.created, s.free)
			if extra < bestExtra || extra == bestExtra && (best == nil || cost.PaidHourEnd(s.created, s.free).Before(cost.PaidHourEnd(best.created, best.free))) {
				best, bestExtra = s, extra
			}
		}
		if best == nil {
			best = &server{f: j.f, created: j.start}
			servers = append(servers, best)
		}
		best.free = j.end
		res.End = maxTime(res.End, j.end)
	}
	var paid time.Duration
	var eur float64
	for _, s := range servers {
		h := cost.PaidHourEnd(s.created, s.free).Sub(s.created)
		paid += h
		if p, ok := cfg.Model.HourlyPrice(s.f); ok {
			eur += p * h.Hours()
		}
	}
	res.ServersCreated = len(servers)
	res.BusyServerHours = busy.Hours()
	res.PaidServerHours = paid.Hours()
	res.IdleServerHours = (paid - busy).Hours()
	if busy > 0 {
		res.IdleOverhead = res.IdleServerHours / res.BusyServerHours
	}
	res.CostEUR = math.Round(eur*100) / 100
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
