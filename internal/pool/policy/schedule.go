package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/smek/action/internal/cluster"
)

// Schedule raises a flavor's minimum for a while after each activation of
// a cron expression, e.g. during weekday working hours.
type Schedule struct {
	// Name says which schedule raised a target, in its reason (default:
	// the cron expression).
	Name string
	// Min is the ready target the schedule keeps at least while active.
	Min int
	// Cron is the expression as written: five fields, or a descriptor
	// like @daily, with an optional CRON_TZ= (default UTC).
	Cron string
	// For is how long the schedule stays active after each activation.
	For time.Duration
	// Flavor is the flavor raised; the zero flavor raises every flavor
	// the policy sizes.
	Flavor cluster.Flavor

	spec cron.Schedule
}

// MaxScheduleFor bounds Schedule.For: a week covers every weekly rhythm.
const MaxScheduleFor = 7 * 24 * time.Hour

// maxScheduleMin bounds Schedule.Min: a typo, not a pool size.
const maxScheduleMin = 1000

// ParseSchedule parses a schedule as the operator writes it in
// --pool-schedule:
//
//	min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h[,flavor=1.36.3/1-mid/baseline][,name=weekday-hours]
//
// The cron expression is the standard five-field one (robfig/cron's, as
// gocron uses it), with an optional CRON_TZ= or TZ= zone (default UTC);
// commas inside it (0 8,13 * * *) are kept. A schedule is active at t
// when an activation lies in (t-for, t].
func ParseSchedule(s string) (Schedule, error) {
	var sc Schedule
	var keys []string
	seen := map[string]bool{}
	fields := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(part, "=")
		switch key {
		case "min", "cron", "for", "flavor", "name":
		default:
			ok = false
		}
		if !ok {
			// A comma inside the cron expression: part of it.
			if len(keys) > 0 && keys[len(keys)-1] == "cron" {
				fields["cron"] += "," + part
				continue
			}
			return sc, fmt.Errorf("schedule %q: %q is not one of min=, cron=, for=, flavor=, name=", s, part)
		}
		if seen[key] {
			return sc, fmt.Errorf("schedule %q: %s= given twice", s, key)
		}
		seen[key] = true
		keys = append(keys, key)
		fields[key] = val
	}
	for _, k := range []string{"min", "cron", "for"} {
		if !seen[k] {
			return sc, fmt.Errorf("schedule %q: %s= is missing (want min=N,cron=EXPR,for=DURATION)", s, k)
		}
	}
	n, err := strconv.Atoi(fields["min"])
	if err != nil || n < 1 || n > maxScheduleMin {
		return sc, fmt.Errorf("schedule %q: min=%s is not a number from 1 to %d", s, fields["min"], maxScheduleMin)
	}
	sc.Min = n
	d, err := time.ParseDuration(fields["for"])
	if err != nil || d <= 0 || d > MaxScheduleFor {
		return sc, fmt.Errorf("schedule %q: for=%s is not a duration above 0 and at most %s, e.g. 10h", s, fields["for"], MaxScheduleFor)
	}
	sc.For = d
	sc.Cron = fields["cron"]
	if sc.spec, err = parseCron(sc.Cron); err != nil {
		return sc, fmt.Errorf("schedule %q: cron=%s: %w", s, sc.Cron, err)
	}
	if v, ok := fields["flavor"]; ok {
		if sc.Flavor, err = cluster.ParseFlavor(v); err != nil {
			return sc, fmt.Errorf("schedule %q: %w", s, err)
		}
	}
	sc.Name = sc.Cron
	if v, ok := fields["name"]; ok {
		if v == "" {
			return sc, fmt.Errorf("schedule %q: name= is empty", s)
		}
		sc.Name = v
	}
	return sc, nil
}

// cronEpoch is where parseCron looks for a first activation.
var cronEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// parseCron parses a standard cron expression, in UTC unless it names a
// zone, and refuses what robfig/cron would accept but a schedule cannot
// use: @every (its activations depend on when it is asked), expressions
// that never fire.
func parseCron(expr string) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, errors.New("empty cron expression")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		// robfig/cron slices up to the first space: without one it panics.
		if !strings.Contains(expr, " ") {
			return nil, errors.New("a zone needs an expression after it, e.g. CRON_TZ=Europe/Berlin 0 8 * * 1-5")
		}
	} else {
		expr = "CRON_TZ=UTC " + expr
	}
	if strings.Contains(expr, "@every") {
		return nil, errors.New("@every is not a time of day; use a five-field expression")
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, err
	}
	if sched.Next(cronEpoch).IsZero() {
		return nil, errors.New("the expression never fires")
	}
	return sched, nil
}

// Active reports whether the schedule is active at t: an activation lies
// in (t-For, t].
func (s Schedule) Active(t time.Time) bool {
	if s.spec == nil {
		return false
	}
	next := s.spec.Next(t.Add(-s.For))
	return !next.IsZero() && !next.After(t)
}
