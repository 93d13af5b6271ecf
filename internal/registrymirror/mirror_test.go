package registrymirror

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []Mirror
		wantErr string // part of the error; empty: no error
	}{
		{in: "", want: nil},
		{in: "docker.io=https://mirror.example", want: []Mirror{{"docker.io", "https://mirror.example"}}},
		{in: " docker.io=https://a.example , ghcr.io=http://b.example:5000/v2/ghcr ", want: []Mirror{
			{"docker.io", "https://a.example"}, {"ghcr.io", "http://b.example:5000/v2/ghcr"}}},
		{in: "localhost:5000=http://127.0.0.1:5001", want: []Mirror{{"localhost:5000", "http://127.0.0.1:5001"}}},
		{in: "registry.k8s.io=https://m.example/", want: []Mirror{{"registry.k8s.io", "https://m.example/"}}},
		{in: "*=https://m.example", want: []Mirror{{"*", "https://m.example"}}},
		{in: "[::1]:5000=http://[::1]:5001", want: []Mirror{{"[::1]:5000", "http://[::1]:5001"}}},
		{in: "docker.io", wantErr: "REGISTRY=URL"},
		{in: "=https://m.example", wantErr: "registry is empty"},
		{in: "Docker.io=https://m.example", wantErr: "lower-case"},
		{in: "docker.io:0=https://m.example", wantErr: "port"},
		{in: "docker.io:99999=https://m.example", wantErr: "port"},
		{in: "docker.io:05=https://m.example", wantErr: "port"},
		{in: "https://docker.io=https://m.example", wantErr: "registry"},
		{in: "docker.io/library=https://m.example", wantErr: "host[:port]"},
		{in: "-docker.io=https://m.example", wantErr: "host[:port]"},
		{in: "docker..io=https://m.example", wantErr: "host[:port]"},
		{in: "*.docker.io=https://m.example", wantErr: "host[:port]"},
		{in: "::1=https://m.example", wantErr: "host[:port]"},
		{in: "docker.io=", wantErr: "http"},
		{in: "docker.io=m.example", wantErr: "absolute"},
		{in: "docker.io=ftp://m.example", wantErr: "absolute"},
		{in: "docker.io=https://", wantErr: "no host"},
		{in: "docker.io=https:m.example", wantErr: "no host"},
		{in: "docker.io=https://user:secret@m.example", wantErr: "user info"},
		{in: "docker.io=https://m.example?x=1", wantErr: "query"},
		{in: "docker.io=https://m.example?", wantErr: "query"},
		{in: "docker.io=https://m.example#x", wantErr: "fragment"},
		{in: "docker.io=https://m.example#", wantErr: "fragment"},
		{in: "docker.io=https://M.example", wantErr: "lower-case"},
		{in: "docker.io=https://*", wantErr: "lower-case"},
		{in: "docker.io=https://m.example/a%22b", want: []Mirror{{"docker.io", "https://m.example/a%22b"}}},
		{in: "docker.io=https://m.example/ä", want: []Mirror{{"docker.io", "https://m.example/%C3%A4"}}},
		{in: "docker.io=https://m.example/a b", want: []Mirror{{"docker.io", "https://m.example/a%20b"}}},
	} {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q): got %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Parse(%q): got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// Secrets in a refused URL are not repeated in the error.
func TestParseErrorHidesSecrets(t *testing.T) {
	for _, in := range []string{
		"docker.io=https://user:s3cret@m.example", "docker.io=https://m.example?token=s3cret",
		"docker.io=https://m.example/#s3cret", "docker.io=https://user:s3cret@m.example:x",
	} {
		_, err := Parse(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%q): got %v, want an error without the secret", in, err)
		}
	}
}

func TestAppendRefusesDuplicates(t *testing.T) {
	a := Mirror{"docker.io", "https://a.example"}
	b := Mirror{"docker.io", "https://b.example"}
	list, err := Append(nil, a, b)
	if err != nil || !slices.Equal(list, []Mirror{a, b}) {
		t.Fatalf("got %v, %v; want both, in order", list, err)
	}
	if _, err := Append(list, a); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("got %v, want an error for the second %s", err, a)
	}
	// The same URL for another registry is no duplicate.
	if _, err := Append(list, Mirror{"ghcr.io", a.URL}); err != nil {
		t.Fatal(err)
	}
}

func TestForKeepsOrderAndFallsBackToWildcard(t *testing.T) {
	ms := []Mirror{
		{"docker.io", "https://a.example"}, {"*", "https://w.example"},
		{"ghcr.io", "https://g.example"}, {"docker.io", "https://b.example"},
	}
	for reg, want := range map[string][]string{
		"docker.io":       {"https://a.example", "https://b.example"},
		"ghcr.io":         {"https://g.example"},
		"registry.k8s.io": {"https://w.example"},
	} {
		if got := For(ms, reg); !slices.Equal(got, want) {
			t.Errorf("For(%s): got %v, want %v", reg, got, want)
		}
	}
	regs, _ := Registries(ms)
	if want := []string{"docker.io", "*", "ghcr.io"}; !slices.Equal(regs, want) {
		t.Errorf("Registries: got %v, want %v", regs, want)
	}
	if got := For(ms[:1], "ghcr.io"); got != nil {
		t.Errorf("For without a wildcard: got %v, want none", got)
	}
}

// FuzzParse: no input panics; what is accepted is written back as it was
// parsed, and parses again to the same mirrors.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"docker.io=https://mirror.example", "*=http://[::1]:5000/v2/x", "a=b", "=,=",
		"localhost:5000=http://127.0.0.1:5001,ghcr.io=https://g.example/p",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := Parse(in)
		if err != nil {
			return
		}
		parts := make([]string, len(ms))
		for i, m := range ms {
			if m.Registry == "" || !strings.HasPrefix(m.URL, "http") || strings.ContainsAny(m.URL, "@?#\", ") {
				t.Fatalf("Parse(%q) accepted %v", in, m)
			}
			parts[i] = m.String()
		}
		again, err := Parse(strings.Join(parts, ","))
		if err != nil || !slices.Equal(again, ms) {
			t.Fatalf("Parse(%q) = %v, but its text parses to %v, %v", in, ms, again, err)
		}
	})
}

func TestContainerdHost(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		override bool
	}{
		{"https://m.example", "https://m.example/v2", false},
		{"https://m.example/", "https://m.example/v2", false},
		{"http://m.example:5000/v2", "http://m.example:5000/v2", false},
		{"https://m.example/v2/hub", "https://m.example/v2/hub", true},
		{"https://m.example/prefix", "https://m.example/prefix", true},
	} {
		got, override := ContainerdHost(tt.in)
		if got != tt.want || override != tt.override {
			t.Errorf("ContainerdHost(%s): got %s %v, want %s %v", tt.in, got, override, tt.want, tt.override)
		}
	}
}
