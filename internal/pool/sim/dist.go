package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/smek/action/internal/cluster"
)

// MaxDuration bounds every duration a Dist is given or draws.
const MaxDuration = 24 * time.Hour

// z95 is the standard normal's 95th percentile.
const z95 = 1.6448536269514722

// Dist is a distribution of durations (a server's create, rebuild or
// restore) that the simulation draws from with its seeded generator.
type Dist struct {
	kind        string // const, uniform, lognormal
	a, b        time.Duration
	mu, sigma   float64 // lognormal, of seconds
	median, p95 time.Duration
}

// Const returns the distribution that is always d.
func Const(d time.Duration) Dist { return Dist{kind: "const", a: d} }

// ParseDist parses a distribution of durations, in Go's duration syntax:
//
//	const:45s                      always 45 s
//	uniform:40s-70s                evenly from 40 s to 70 s
//	lognormal:median=55s,p95=80s   log-normal with that median and 95th percentile
//
// Durations are above 0 and at most MaxDuration; a uniform's upper bound
// is not below its lower one, a log-normal's p95 is above its median.
func ParseDist(s string) (Dist, error) {
	kind, arg, ok := strings.Cut(s, ":")
	bad := func(format string, args ...any) (Dist, error) {
		return Dist{}, fmt.Errorf("distribution %q: %s", cluster.Truncate(s, 60), fmt.Sprintf(format, args...))
	}
	if !ok {
		return bad("want const:D, uniform:D1-D2 or lognormal:median=D,p95=D (e.g. lognormal:median=55s,p95=80s)")
	}
	switch kind {
	case "const":
		d, err := parseDur(arg)
		if err != nil {
			return bad("%v", err)
		}
		return Const(d), nil
	case "uniform":
		lo, hi, ok := strings.Cut(arg, "-")
		if !ok {
			return bad("want uniform:D1-D2, e.g. uniform:40s-70s")
		}
		a, err := parseDur(lo)
		if err != nil {
			return bad("lower bound: %v", err)
		}
		b, err := parseDur(hi)
		if err != nil {
			return bad("upper bound: %v", err)
		}
		if b < a {
			return bad("upper bound %s is below lower bound %s", b, a)
		}
		return Dist{kind: "uniform", a: a, b: b}, nil
	case "lognormal":
		var median, p95 time.Duration
		for _, kv := range strings.Split(arg, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return bad("want lognormal:median=D,p95=D")
			}
			d, err := parseDur(v)
			if err != nil {
				return bad("%s: %v", cluster.Truncate(k, 20), err)
			}
			switch k {
			case "median":
				if median != 0 {
					return bad("median given twice")
				}
				median = d
			case "p95":
				if p95 != 0 {
					return bad("p95 given twice")
				}
				p95 = d
			default:
				return bad("unknown parameter %q (median, p95)", cluster.Truncate(k, 20))
			}
		}
		if median == 0 || p95 == 0 {
			return bad("want both median and p95, e.g. lognormal:median=55s,p95=80s")
		}
		if p95 <= median {
			return bad("p95 %s must be above the median %s", p95, median)
		}
		mu := math.Log(median.Seconds())
		return Dist{kind: "lognormal", median: median, p95: p95, mu: mu, sigma: (math.Log(p95.Seconds()) - mu) / z95}, nil
	}
	return bad("unknown kind %q (const, uniform, lognormal)", cluster.Truncate(kind, 20))
}

func parseDur(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 45s or 1m30s", cluster.Truncate(s, 30))
	}
	if d <= 0 || d > MaxDuration {
		return 0, fmt.Errorf("%s is not above 0 and at most %s", d, MaxDuration)
	}
	return d, nil
}

// String writes d as ParseDist reads it.
func (d Dist) String() string {
	switch d.kind {
	case "const":
		return "const:" + d.a.String()
	case "uniform":
		return "uniform:" + d.a.String() + "-" + d.b.String()
	case "lognormal":
		return "lognormal:median=" + d.median.String() + ",p95=" + d.p95.String()
	}
	return ""
}

// IsZero reports whether d is the zero Dist (none given).
func (d Dist) IsZero() bool { return d.kind == "" }

// Sample draws a duration, at most MaxDuration.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	var out time.Duration
	switch d.kind {
	case "const":
		out = d.a
	case "uniform":
		out = d.a + time.Duration(r.Int64N(int64(d.b-d.a)+1))
	case "lognormal":
		secs := math.Exp(d.mu + d.sigma*r.NormFloat64())
		if !(secs < MaxDuration.Seconds()) { // also +Inf, which no Duration holds
			return MaxDuration
		}
		out = time.Duration(secs * float64(time.Second))
	}
	return min(max(out, time.Millisecond), MaxDuration)
}
