package cluster

import "testing"

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a bit too long", 5, "a bit…"},
		{"", 0, ""},
		{"abc", 0, "…"},
		// "é" is two bytes: a cut inside it keeps the whole character out.
		{"caféteria", 4, "caf…"},
		{"caféteria", 5, "café…"},
	}
	for _, tt := range tests {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}
