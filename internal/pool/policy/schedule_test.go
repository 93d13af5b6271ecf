package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/smek/action/internal/cluster"
)

func TestParseSchedule(t *testing.T) {
	sc, err := ParseSchedule("min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h,flavor=1.36.3/1-mid/privileged,name=weekday-hours")
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid, Privileged: true}
	if sc.Min != 4 || sc.For != 10*time.Hour || sc.Flavor != want || sc.Name != "weekday-hours" || sc.Cron != "CRON_TZ=Europe/Berlin 0 8 * * 1-5" {
		t.Fatalf("got %+v", sc)
	}
	sc, err = ParseSchedule("cron=0 8,13 * * *,min=2,for=1h")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cron != "0 8,13 * * *" || sc.Name != sc.Cron || sc.Flavor != (cluster.Flavor{}) {
		t.Fatalf("comma in cron: got %+v", sc)
	}
	for _, tc := range []struct{ in, wantErr string }{
		{"", `"" is not one of`},
		{"min=4,for=1h", "cron= is missing"},
		{"min=4,cron=0 8 * * *", "for= is missing"},
		{"min=0,cron=0 8 * * *,for=1h", "min=0"},
		{"min=x,cron=0 8 * * *,for=1h", "min=x"},
		{"min=4,cron=0 8 * * *,for=0s", "for=0s"},
		{"min=4,cron=0 8 * * *,for=200h", "for=200h"},
		{"min=4,cron=0 8 * *,for=1h", "cron=0 8 * *"},
		{"min=4,cron=CRON_TZ=Mars/Base 0 8 * * *,for=1h", "Mars/Base"},
		{"min=4,cron=CRON_TZ=Europe/Berlin,for=1h", "zone needs an expression"},
		{"min=4,cron=@every 1h,for=1h", "@every"},
		{"min=4,cron=0 0 30 2 *,for=1h", "never fires"},
		{"min=4,cron=0 8 * * *,for=1h,flavor=1.36/1-mid/baseline", "flavor"},
		{"min=4,min=5,cron=0 8 * * *,for=1h", "given twice"},
		{"size=4,cron=0 8 * * *,for=1h", `"size=4" is not one of`},
		{"min=4,cron=0 8 * * *,for=1h,name=", "name= is empty"},
	} {
		_, err := ParseSchedule(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseSchedule(%q) = %v, want an error with %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestScheduleActive(t *testing.T) {
	sc, err := ParseSchedule("min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h")
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 12, 3, 7, 59, 59, 0, berlin), false}, // Thursday before 8
		{time.Date(2026, 12, 3, 8, 0, 0, 0, berlin), true},    // the activation itself
		{time.Date(2026, 12, 3, 17, 59, 59, 0, berlin), true},
		{time.Date(2026, 12, 3, 18, 0, 0, 0, berlin), false},  // (t-for, t] is open at t-for
		{time.Date(2026, 12, 5, 9, 0, 0, 0, berlin), false},   // Saturday
		{time.Date(2026, 12, 3, 7, 30, 0, 0, time.UTC), true}, // 08:30 in Berlin
	} {
		if got := sc.Active(tc.at); got != tc.want {
			t.Errorf("Active(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
	utc, err := ParseSchedule("min=1,cron=0 8 * * *,for=1h")
	if err != nil {
		t.Fatal(err)
	}
	if !utc.Active(time.Date(2026, 12, 3, 8, 30, 0, 0, time.UTC)) || utc.Active(time.Date(2026, 12, 3, 7, 30, 0, 0, time.UTC)) {
		t.Error("a schedule without CRON_TZ is not read in UTC")
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{
		"min=4,cron=CRON_TZ=Europe/Berlin 0 8 * * 1-5,for=10h,flavor=1.36.3/1-mid/baseline",
		"min=1,cron=0 8,13 * * *,for=1h,name=x",
		"min=1,cron=TZ=UTC,for=1h",
		"min=2,cron=@daily,for=30m",
		"cron=,,,min=,for=",
	} {
		f.Add(s)
	}
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseSchedule(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if sc.Min < 1 || sc.For <= 0 || sc.For > MaxScheduleFor || sc.Name == "" {
			t.Fatalf("ParseSchedule(%q) accepted %+v", s, sc)
		}
		sc.Active(at) // must not panic
	})
}
