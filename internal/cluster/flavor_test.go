package cluster

import "testing"

func TestParseFlavor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Flavor
		ok   bool
	}{
		{"1.36.3/1-mid/baseline", Flavor{K8sVersion: "1.36.3", Size: "1-mid"}, true},
		{"1.35.0/1-mid/privileged", Flavor{K8sVersion: "1.35.0", Size: "1-mid", Privileged: true}, true},
		{"", Flavor{}, false},
		{"1.36.3/1-mid", Flavor{}, false},
		{"1.36.3/1-mid/baseline/x", Flavor{}, false},
		{"1.36/1-mid/baseline", Flavor{}, false},
		{"v1.36.3/1-mid/baseline", Flavor{}, false},
		{"1.36.3/2-big/baseline", Flavor{}, false},
		{"1.36.3/1-mid/Baseline", Flavor{}, false},
		{"1..3/1-mid/baseline", Flavor{}, false},
	} {
		got, err := ParseFlavor(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseFlavor(%q) error %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseFlavor(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseFlavor(f *testing.F) {
	for _, s := range []string{"1.36.3/1-mid/baseline", "1.35.0/1-mid/privileged", "a/b/c", "//", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFlavor(s)
		if err != nil {
			return
		}
		if got := fl.String(); got != s {
			t.Fatalf("ParseFlavor(%q).String() = %q: not a round trip", s, got)
		}
	})
}
