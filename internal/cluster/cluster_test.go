package cluster

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var idShape = regexp.MustCompile(`^c-[a-z0-9]{6}$`)

func TestNewIDShape(t *testing.T) {
	for range 1000 {
		id := NewID()
		if !idShape.MatchString(string(id)) {
			t.Fatalf("NewID() = %q, want c- and 6 lower-case letters or digits", id)
		}
		if got, err := ParseID(string(id)); err != nil || got != id {
			t.Fatalf("ParseID(%q) = %q, %v", id, got, err)
		}
	}
}

// With 36^6 ≈ 2.2e9 ids, 10,000 draws are expected to hold 0.023 colliding
// pairs (birthday bound); three or more happen with probability about
// 2e-6, so the test allows two. A generator with a fraction of its claimed
// entropy fails at once.
func TestNewIDIsRandom(t *testing.T) {
	const n = 10000
	seen := make(map[ID]bool, n)
	dups := 0
	// perPos[i][c] counts character c at position i.
	var perPos [6][36]int
	for range n {
		id := NewID()
		if seen[id] {
			dups++
		}
		seen[id] = true
		for i := range 6 {
			perPos[i][strings.IndexByte(idAlphabet, id[2+i])]++
		}
	}
	if dups > 2 {
		t.Errorf("got %d duplicate ids in %d, want at most 2", dups, n)
	}
	// Every character shows up at every position: n/36 ≈ 278 expected, so a
	// missing one never happens by chance (e^-278).
	for i, counts := range perPos {
		for c, k := range counts {
			if k == 0 {
				t.Errorf("character %q never appears at position %d in %d ids", idAlphabet[c], i, n)
			}
		}
	}
}

// Each of the 36 characters should be equally likely at each position. A
// chi-squared statistic over 36 categories (35 degrees of freedom) exceeds
// 90 with probability below 1e-6 for a uniform source; reducing a random
// byte modulo 36 makes a–d 8/7 as likely as the rest, which over 216,000
// characters gives a statistic around 400.
func TestNewIDIsUniform(t *testing.T) {
	const n = 36000
	var counts [36]float64
	for range n {
		id := NewID()
		for i := 2; i < len(id); i++ {
			counts[strings.IndexByte(idAlphabet, id[i])]++
		}
	}
	want := float64(n*6) / 36
	chi2 := 0.0
	for _, k := range counts {
		chi2 += (k - want) * (k - want) / want
	}
	if chi2 > 90 {
		t.Errorf("chi-squared %.1f over %d characters, want below 90: the characters are not equally likely (counts %v)", chi2, n*6, counts)
	}
}

func TestParseID(t *testing.T) {
	valid := []string{"c-aaabbb", "c-123456", "c-a1b2c3", "c-zzzzzz", "c-000000"}
	for _, s := range valid {
		got, err := ParseID(s)
		if err != nil || string(got) != s {
			t.Errorf("ParseID(%q) = %q, %v; want it accepted", s, got, err)
		}
	}
	invalid := []struct {
		name, in string
	}{
		{"empty", ""},
		{"prefix only", "c-"},
		{"five characters", "c-aaabb"},
		{"seven characters", "c-aaabbbb"},
		{"the seed's list example", "c-aabbb"},
		{"the seed's other list example", "c-123dfeg"},
		{"upper-case prefix", "C-aaabbb"},
		{"upper-case body", "c-AAABBB"},
		{"other prefix", "d-aaabbb"},
		{"underscore", "c_aaabbb"},
		{"space inside", "c-aaa bb"},
		{"leading space", " c-aaabb"},
		{"trailing newline", "c-aaabb\n"},
		{"path traversal", "c-../../"},
		{"quotes", `c-"aaab"`},
		{"non-ASCII letters", "c-ääab"},
		{"NUL", "c-aaab\x00b"},
		{"long", "c-" + strings.Repeat("a", 1000)},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if got != "" {
				t.Errorf("got id %q, want none", got)
			}
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Code != EINVALID || e.Field != "cluster-id" {
				t.Fatalf("got %v, want an invalid cluster-id error", err)
			}
			if !strings.Contains(e.Message, "c- followed by 6") {
				t.Errorf("message %q does not say what an id looks like", e.Message)
			}
			if len(e.Message) > 200 {
				t.Errorf("message of %d bytes for an input of %d, want the input shortened", len(e.Message), len(tt.in))
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"c-aaabbb", "c-AAABBB", "", "c-ääab", "c-\xff\xfe\xfd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if (err == nil) != idShape.MatchString(s) {
			t.Fatalf("ParseID(%q) = %q, %v; the shape says %t", s, id, err, idShape.MatchString(s))
		}
		if err == nil && string(id) != s {
			t.Fatalf("ParseID(%q) = %q", s, id)
		}
	})
}

func TestErrorHelpers(t *testing.T) {
	inner := errors.New("disk on fire")
	app := &Error{Code: ECONFLICT, Field: "cluster-id", Message: "cluster c-aaabbb is terminated", Err: inner}
	wrapped := errors.Join(errors.New("stop"), app)
	tests := []struct {
		err      error
		code     Code
		message  string
		unwrapTo error
	}{
		{nil, "", "internal error", nil},
		{inner, EINTERNAL, "internal error", inner},
		{app, ECONFLICT, "cluster c-aaabbb is terminated", inner},
		{wrapped, ECONFLICT, "cluster c-aaabbb is terminated", inner},
		{Errorf(ELIMIT, "", "limit %d", 5), ELIMIT, "limit 5", nil},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := ErrorMessage(tt.err); got != tt.message {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.message)
		}
		if tt.unwrapTo != nil && !errors.Is(tt.err, tt.unwrapTo) {
			t.Errorf("%v does not unwrap to %v", tt.err, tt.unwrapTo)
		}
	}
	// The internal detail is in Error() for the logs, never in the message.
	if !strings.Contains(app.Error(), "disk on fire") || strings.Contains(ErrorMessage(app), "disk") {
		t.Errorf("Error() = %q, ErrorMessage = %q", app.Error(), ErrorMessage(app))
	}
}
