package policy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

var (
	mid  = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	priv = cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	// t0 is a Thursday, 06:00 UTC.
	t0 = time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
)

func TestPoissonQuantile(t *testing.T) {
	for _, tc := range []struct {
		mean, p float64
		want    int
	}{
		{0, 0.99, 0},
		{0.005, 0.99, 0}, // P(0) = 0.995
		{0.2, 0.99, 2},   // P(<=1) = 0.982, P(<=2) = 0.9989
		{1, 0.99, 4},     // P(<=3) = 0.981, P(<=4) = 0.9963
		{10, 0.99, 18},
		{1000, 0.99, 1074}, // mean + 2.33 sd
	} {
		if got := PoissonQuantile(tc.mean, tc.p); got != tc.want {
			t.Errorf("PoissonQuantile(%v, %v) = %d, want %d", tc.mean, tc.p, got, tc.want)
		}
	}
}

func newAuto(t *testing.T, cfg AutoConfig) *Auto {
	t.Helper()
	if cfg.Flavors == nil {
		cfg.Flavors = map[cluster.Flavor]Bounds{mid: {Min: 0, Max: 10}}
	}
	a, err := NewAuto(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAutoScalesUpUnderABurstAndDecaysAfter(t *testing.T) {
	a := newAuto(t, AutoConfig{ReadyPrior: 2 * time.Minute})
	if got := a.Targets(t0)[mid]; got.Ready != 0 {
		t.Fatalf("quiet pool: target %+v, want 0", got)
	}
	// A push burst: 20 creates in 5 minutes (240/h), all warm.
	for i := range 20 {
		a.ObserveArrival(mid, t0.Add(time.Duration(i)*15*time.Second), true)
	}
	burst := a.Targets(t0.Add(5 * time.Minute))[mid]
	// 20 in the 15 min window: 80/h; λ·T = 80 × 2/60 = 2.67: p99 → 7.
	if burst.Ready != 7 {
		t.Fatalf("under the burst: target %+v, want 7", burst)
	}
	if !strings.Contains(burst.Reason, "arrivals 80/h") || !strings.Contains(burst.Reason, "ready assumed in 2m0s") || !strings.Contains(burst.Reason, "poisson p99 → 7") {
		t.Errorf("reason %q", burst.Reason)
	}
	// Measured: new members take 30 s; the lead time follows (p90).
	for range 10 {
		a.ObserveReady(mid, 30*time.Second, false)
	}
	a.ObserveReady(mid, 5*time.Minute, true) // rebuilds do not size the pool
	if got := a.Targets(t0.Add(5 * time.Minute))[mid]; got.Ready != 3 || !strings.Contains(got.Reason, "ready in 30s") {
		t.Fatalf("measured 30 s: target %+v, want 3 (λ·T = 0.67)", got)
	}
	// After the burst the short window empties; the long one (20 in 3 h,
	// 6.67/h) decays slowly.
	after := a.Targets(t0.Add(30 * time.Minute))[mid]
	if after.Ready != 1 {
		t.Fatalf("30 min after the burst: target %+v, want 1 (λ 6.67/h)", after)
	}
	if got := a.Targets(t0.Add(4 * time.Hour))[mid]; got.Ready != 0 {
		t.Fatalf("4 h after the burst: target %+v, want 0", got)
	}
}

func TestAutoColdCreatesRaiseTheTargetAtOnce(t *testing.T) {
	a := newAuto(t, AutoConfig{ReadyPrior: time.Minute, ServiceLevel: 0.5})
	a.ObserveArrival(mid, t0, false)
	a.ObserveArrival(mid, t0.Add(time.Second), false)
	got := a.Targets(t0.Add(2 * time.Second))[mid]
	if got.Ready != 2 || !strings.Contains(got.Reason, "2 cold creates") {
		t.Fatalf("after two cold creates: %+v, want 2", got)
	}
	if got := a.Targets(t0.Add(2 * time.Minute))[mid]; strings.Contains(got.Reason, "cold") {
		t.Fatalf("a lead time later the cold creates still count: %+v", got)
	}
}

func TestAutoBounds(t *testing.T) {
	a := newAuto(t, AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Min: 1, Max: 3}, priv: {Min: 0, Max: 1}}})
	got := a.Targets(t0)
	if got[mid].Ready != 1 || got[mid].Reason != "min 1" || got[priv].Ready != 0 {
		t.Fatalf("quiet: %+v", got)
	}
	for i := range 100 {
		a.ObserveArrival(mid, t0.Add(time.Duration(i)*time.Second), true)
	}
	a.ObserveArrival(cluster.Flavor{K8sVersion: "1.35.0", Size: cluster.SizeMid}, t0, false) // not sized: ignored
	got = a.Targets(t0.Add(2 * time.Minute))
	if got[mid].Ready != 3 || !strings.HasPrefix(got[mid].Reason, "max 3 (arrivals 400/h") {
		t.Fatalf("burst capped: %+v", got[mid])
	}
	if len(got) != 2 {
		t.Fatalf("targets for %d flavors, want 2", len(got))
	}
}

func TestAutoScheduleRaisesMin(t *testing.T) {
	sc, err := ParseSchedule("min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h,name=weekday-hours,flavor=1.36.3/1-mid/baseline")
	if err != nil {
		t.Fatal(err)
	}
	// A schedule without a flavor raises every flavor, within its max.
	every, err := ParseSchedule("min=5,cron=0 20 * * *,for=1h,name=evening")
	if err != nil {
		t.Fatal(err)
	}
	privOnly, err := ParseSchedule("min=2,cron=0 12 * * *,for=1h,flavor=1.36.3/1-mid/privileged")
	if err != nil {
		t.Fatal(err)
	}
	a := newAuto(t, AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Min: 1, Max: 10}, priv: {Max: 3}}, Schedules: []Schedule{sc, every, privOnly}})
	for _, tc := range []struct {
		at         time.Time
		mid, priv  int
		midReason  string
		privReason string
	}{
		{t0, 1, 0, "min 1", ""}, // 07:00 Berlin
		{t0.Add(time.Hour), 4, 0, "schedule weekday-hours min 4", ""},               // 08:00 Berlin
		{t0.Add(6 * time.Hour), 4, 2, "schedule weekday-hours min 4", "schedule"},   // 12:00 UTC
		{t0.Add(11 * time.Hour), 1, 0, "min 1", ""},                                 // 18:00 Berlin
		{t0.Add(49 * time.Hour), 1, 0, "min 1", ""},                                 // Saturday 08:00 Berlin
		{t0.Add(7 * time.Hour), 4, 0, "schedule weekday-hours min 4", "arrivals 0"}, // 13:00 UTC: privileged one over
		{t0.Add(14*time.Hour + 30*time.Minute), 5, 3, "schedule evening min 5", "max 3 (schedule evening min 5)"},
	} {
		got := a.Targets(tc.at)
		if got[mid].Ready != tc.mid || got[mid].Reason != tc.midReason || got[priv].Ready != tc.priv || !strings.HasPrefix(got[priv].Reason, tc.privReason) {
			t.Errorf("at %s: got %+v", tc.at, got)
		}
	}
}

func TestNewAutoRefuses(t *testing.T) {
	sc, _ := ParseSchedule("min=2,cron=0 12 * * *,for=1h,flavor=1.36.3/1-mid/privileged")
	for _, tc := range []struct {
		name string
		cfg  AutoConfig
		want string
	}{
		{"no flavor", AutoConfig{}, "no flavor"},
		{"min above max", AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Min: 3, Max: 2}}}, "min 3, max 2"},
		{"max 0", AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {}}}, "max 0"},
		{"service level 1", AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Max: 2}}, ServiceLevel: 1}, "service level"},
		{"schedule of another flavor", AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Max: 2}}, Schedules: []Schedule{sc}}, "does not keep"},
		{"hand-made schedule", AutoConfig{Flavors: map[cluster.Flavor]Bounds{mid: {Max: 2}}, Schedules: []Schedule{{Name: "x", Min: 1}}}, "ParseSchedule"},
	} {
		if _, err := NewAuto(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestAutoConcurrent is for the race detector.
func TestAutoConcurrent(t *testing.T) {
	a := newAuto(t, AutoConfig{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				at := t0.Add(time.Duration(i*200+j) * time.Second)
				a.ObserveArrival(mid, at, j%7 == 0)
				a.ObserveReady(mid, time.Duration(j)*time.Second, j%2 == 0)
				a.Targets(at)
			}
		})
	}
	wg.Wait()
	if got := a.Targets(t0.Add(800 * time.Second))[mid]; got.Ready == 0 {
		t.Fatalf("after 800 arrivals: %+v", got)
	}
}
