package sim

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseDist(t *testing.T) {
	for _, s := range []string{"const:45s", "uniform:40s-1m10s", "lognormal:median=55s,p95=1m20s"} {
		d, err := ParseDist(s)
		if err != nil {
			t.Fatalf("ParseDist(%q): %v", s, err)
		}
		if d.String() != s {
			t.Errorf("ParseDist(%q).String() = %q", s, d.String())
		}
	}
	for in, want := range map[string]string{
		"45s":                           "want const:D",
		"const:":                        "not a duration",
		"const:0s":                      "not above 0",
		"const:48h":                     "at most 24h",
		"uniform:70s-40s":               "below lower bound",
		"uniform:40s":                   "want uniform:D1-D2",
		"lognormal:median=55s":          "want both median and p95",
		"lognormal:median=55s,p95=50s":  "must be above the median",
		"lognormal:median=55s,p50=80s":  `unknown parameter "p50"`,
		"lognormal:median=5s,median=6s": "median given twice",
		"normal:55s":                    `unknown kind "normal"`,
	} {
		_, err := ParseDist(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDist(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestDistSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if got := Const(45 * time.Second).Sample(rng); got != 45*time.Second {
		t.Errorf("const sample %v", got)
	}
	u, _ := ParseDist("uniform:40s-70s")
	ln, _ := ParseDist("lognormal:median=55s,p95=80s")
	var ls []time.Duration
	for range 20000 {
		x := u.Sample(rng)
		if x < 40*time.Second || x > 70*time.Second {
			t.Fatalf("uniform sample %v outside 40s-70s", x)
		}
		ls = append(ls, ln.Sample(rng))
	}
	slices.Sort(ls)
	med, p95 := ls[len(ls)/2], ls[len(ls)*95/100]
	if med < 53*time.Second || med > 57*time.Second || p95 < 77*time.Second || p95 > 83*time.Second {
		t.Errorf("lognormal median %v p95 %v, want about 55s and 80s", med, p95)
	}
}

func FuzzParseDist(f *testing.F) {
	for _, s := range []string{"const:45s", "uniform:40s-70s", "lognormal:median=55s,p95=80s", "lognormal:p95=1h,median=1ns", "uniform:1ns-24h"} {
		f.Add(s, uint64(1))
	}
	f.Fuzz(func(t *testing.T, s string, seed uint64) {
		d, err := ParseDist(s)
		if err != nil {
			return
		}
		again, err := ParseDist(d.String())
		if err != nil || again != d {
			t.Fatalf("%q prints as %q, which parses as %+v, %v", s, d.String(), again, err)
		}
		rng := rand.New(rand.NewPCG(seed, 0))
		for range 10 {
			if x := d.Sample(rng); x <= 0 || x > MaxDuration {
				t.Fatalf("%q drew %v", s, x)
			}
		}
	})
}
