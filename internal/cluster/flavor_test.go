package cluster

import (
	"strings"
	"testing"
)

func TestParseFlavor(t *testing.T) {
	for _, f := range []Flavor{
		{K8sVersion: "1.36.3", Size: SizeMid},
		{K8sVersion: "1.35.0+k3s1", Size: SizeMid, Privileged: true},
	} {
		got, err := ParseFlavor(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFlavor(%q) = %+v, %v; want %+v", f.String(), got, err, f)
		}
	}
	for in, want := range map[string]string{
		"":                        "want VERSION/SIZE",
		"1.36.3/1-mid":            "want VERSION/SIZE",
		"1.36.3/1-mid/baseline/x": "want VERSION/SIZE",
		"v1.36.3/1-mid/baseline":  "not a version",
		"/1-mid/baseline":         "not a version",
		"1.36.3/2-big/baseline":   `unknown size "2-big"`,
		"1.36.3/1-mid/Privileged": "neither baseline nor privileged",
		"1.36.3 /1-mid/baseline":  "not a version",
	} {
		_, err := ParseFlavor(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFlavor(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func FuzzParseFlavor(f *testing.F) {
	for _, s := range []string{"1.36.3/1-mid/baseline", "1.36/1-mid/privileged", "x/y/z", "", "///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFlavor(s)
		if err != nil {
			return
		}
		if fl.String() != s {
			t.Fatalf("ParseFlavor(%q) = %+v, which prints as %q", s, fl, fl.String())
		}
	})
}
