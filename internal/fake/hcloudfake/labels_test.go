package hcloudfake

import "testing"

func TestSelector(t *testing.T) {
	labels := map[string]string{"env": "production", "smek/install": "a", "empty": ""}
	cases := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"env=production", true},
		{"env==production", true},
		{"env!=production", false},
		{"type!=database", true},
		{"env", true},
		{"!env", false},
		{"!type", true},
		{"env in (testing,staging)", false},
		{"env in (production, staging)", true},
		{"env notin (production)", false},
		{"env=production,type!=database", true},
		{"env=production,!smek/install", false},
		{"smek/install=a,empty", true},
		{"empty=", true},
	}
	for _, tc := range cases {
		sel, err := parseSelector(tc.sel)
		if err != nil {
			t.Errorf("parse %q: %v", tc.sel, err)
			continue
		}
		if got := sel.matches(labels); got != tc.want {
			t.Errorf("%q matches: got %v, want %v", tc.sel, got, tc.want)
		}
	}
	for _, bad := range []string{",", "a in b", "a in (b", "=x", "!", "a=b=c", "a,,b"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("parse %q: got no error, want one", bad)
		}
	}
}

func FuzzSelector(f *testing.F) {
	for _, s := range []string{"env=production,type!=database", "env in (testing,staging)", "!type", "k1==v,!k2", "a notin (b,c)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := parseSelector(s)
		if err != nil {
			return
		}
		_ = sel.matches(map[string]string{"env": "production"})
		// A parsed selector's requirements have non-empty, clean keys.
		for _, r := range sel {
			if checkKey(r.key) != nil {
				t.Errorf("parsed %q into bad key %q", s, r.key)
			}
		}
	})
}
