package cost

import (
	"math"
	"strings"
	"testing"

	"github.com/smek/action/internal/cluster"
)

func TestParsePrice(t *testing.T) {
	for _, tc := range []struct {
		in      string
		typ     string
		price   float64
		wantErr string
	}{
		{in: "ccx33=0.0769", typ: "ccx33", price: 0.0769},
		{in: " cx22=0 ", typ: "cx22", price: 0},
		{in: "ccx33", wantErr: "--price: \"ccx33\" is not TYPE=EUR_PER_HOUR"},
		{in: "=0.1", wantErr: "is not a server type name"},
		{in: "CCX33=0.1", wantErr: "is not a server type name"},
		{in: "ccx33=abc", wantErr: "--price ccx33: \"abc\" is not a price"},
		{in: "ccx33=-1", wantErr: "out of range"},
		{in: "ccx33=NaN", wantErr: "is not a price"},
		{in: "ccx33=Inf", wantErr: "is not a price"},
		{in: "ccx33=47.99e3", wantErr: "out of range"},
	} {
		typ, p, err := ParsePrice(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePrice(%q): got %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || typ != tc.typ || p != tc.price {
			t.Errorf("ParsePrice(%q) = %q, %v, %v; want %q, %v", tc.in, typ, p, err, tc.typ, tc.price)
		}
	}
}

func TestParsePrices(t *testing.T) {
	got, err := ParsePrices("ccx33=0.08,cx22=0.006")
	if err != nil || len(got) != 2 || got["ccx33"] != 0.08 || got["cx22"] != 0.006 {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ParsePrices("ccx33=0.08,ccx33=0.09"); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a type given twice: got %v", err)
	}
	if _, err := ParsePrices("ccx33=0.08,"); err == nil {
		t.Error("a trailing comma was accepted")
	}
}

func TestParseSnapshotPrice(t *testing.T) {
	if p, err := ParseSnapshotPrice("0.0119"); err != nil || p != 0.0119 {
		t.Errorf("got %v, %v", p, err)
	}
	for _, in := range []string{"", "x", "-0.01", "1e9", "nan"} {
		if _, err := ParseSnapshotPrice(in); err == nil || !strings.HasPrefix(err.Error(), "--snapshot-price: ") {
			t.Errorf("ParseSnapshotPrice(%q): got %v, want an error naming the flag", in, err)
		}
	}
}

func FuzzParsePrice(f *testing.F) {
	for _, s := range []string{"ccx33=0.0769", "cx22=0", "a=1e2", "=", "x=-0", "ccx33=0x1p-4", "a-b=1_0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, p, err := ParsePrice(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--price") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			return
		}
		if !validServerType(typ) || math.IsNaN(p) || p < 0 || p > maxPrice {
			t.Fatalf("ParsePrice(%q) accepted %q, %v", s, typ, p)
		}
	})
}

func FuzzParseSnapshotPrice(f *testing.F) {
	for _, s := range []string{"0.0119", "0", "1e-3", "-1", "inf", " 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSnapshotPrice(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--snapshot-price: ") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			return
		}
		if math.IsNaN(p) || p < 0 || p > maxPrice {
			t.Fatalf("ParseSnapshotPrice(%q) accepted %v", s, p)
		}
	})
}

func TestDefaultPricesEveryServerType(t *testing.T) {
	m := Default()
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	p, billed := m.HourlyPrice(cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid})
	if !billed || p != 0.0769 {
		t.Errorf("1-mid: got %v, %v; want ccx33's 0.0769", p, billed)
	}
}

func TestWithOverrides(t *testing.T) {
	base := Default()
	m := base.With(map[string]float64{"ccx33": 0.1, "new1": 2}, -1)
	if m.Hourly["ccx33"] != 0.1 || m.Hourly["new1"] != 2 || m.Hourly["cx22"] != base.Hourly["cx22"] {
		t.Errorf("got %v", m.Hourly)
	}
	if m.SnapshotGBMonth != DefaultSnapshotGBMonth {
		t.Errorf("a negative snapshot price replaced the default: %v", m.SnapshotGBMonth)
	}
	if base.Hourly["ccx33"] != 0.0769 {
		t.Error("With changed the model it was called on")
	}
	if m2 := base.With(nil, 0.02); m2.SnapshotGBMonth != 0.02 {
		t.Errorf("snapshot price: got %v", m2.SnapshotGBMonth)
	}
	noPrice := Model{Hourly: map[string]float64{}, ServerTypes: map[string]string{cluster.SizeMid: "ccx99"}}
	if err := noPrice.Check(); err == nil || !strings.Contains(err.Error(), "ccx99") {
		t.Errorf("a server type without a price: got %v", err)
	}
}

func TestCost(t *testing.T) {
	f := cluster.Flavor{K8sVersion: "1.36.3", Size: cluster.SizeMid}
	m := Model{Hourly: map[string]float64{"ccx33": 0.1}, SnapshotGBMonth: 7.3, ServerTypes: map[string]string{cluster.SizeMid: "ccx33"}}
	u := Usage{Flavor: f, SnapshotGBHours: 20}
	u.Add(Busy, 10)
	u.Add(Idle, 2.5)
	u.Add(Stopped, 1)
	u.Add(Building, 0.5)
	u.Add(Hibernated, 4)
	eur, total := m.Cost(u)
	want := map[Category]float64{Busy: 1, Idle: 0.25, Stopped: 0.1, Building: 0.05, Hibernated: 0.2}
	for c, w := range want {
		if math.Abs(eur[c]-w) > 1e-9 {
			t.Errorf("%s: got %v, want %v", c, eur[c], w)
		}
	}
	if math.Abs(total-1.6) > 1e-9 {
		t.Errorf("total: got %v, want 1.6", total)
	}
	if r, ok := u.IdleOverhead(); !ok || r != 0.25 {
		t.Errorf("idle overhead: got %v, %v", r, ok)
	}
	local := Usage{Flavor: cluster.Flavor{Size: "2-big"}, Hours: map[Category]float64{Busy: 3}}
	if _, total := m.Cost(local); total != 0 {
		t.Errorf("a size without a server type cost %v", total)
	}
	if _, ok := (Usage{}).IdleOverhead(); ok {
		t.Error("idle overhead of nothing busy is ok")
	}
}
