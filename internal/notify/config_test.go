package notify

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		in   string
		want SMTPConfig
	}{
		{"smtp://mail.example.com", SMTPConfig{Host: "mail.example.com", Port: 587, TLS: StartTLSRequired}},
		{"smtp://bob:s%40cret@mail.example.com:2525", SMTPConfig{Host: "mail.example.com", Port: 2525, Username: "bob", Password: "s@cret", TLS: StartTLSRequired}},
		{"smtps://bob:pw@mail.example.com", SMTPConfig{Host: "mail.example.com", Port: 465, Username: "bob", Password: "pw", TLS: TLSImplicit}},
		{"smtp://mail.example.com:25?starttls=opportunistic", SMTPConfig{Host: "mail.example.com", Port: 25, TLS: StartTLSOpportunistic}},
		{"smtp://127.0.0.1:1025?starttls=off", SMTPConfig{Host: "127.0.0.1", Port: 1025, TLS: StartTLSOff}},
		{"smtp://u:p@localhost:1025?starttls=off", SMTPConfig{Host: "localhost", Port: 1025, Username: "u", Password: "p", TLS: StartTLSOff}},
		{"smtp://[::1]:1025/?starttls=off", SMTPConfig{Host: "::1", Port: 1025, TLS: StartTLSOff}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSMTPURL(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSMTPURLErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "scheme"},
		{"http://mail.example.com", `scheme "http"`},
		{"smtp://", "no host"},
		{"smtp:mail.example.com", "no host"},
		{"smtp://mail.example.com:0", "port"},
		{"smtp://mail.example.com:99999", "port"},
		{"smtp://mail.example.com/x", "path"},
		{"smtp://mail.example.com?starttls=maybe", "starttls"},
		{"smtps://mail.example.com?starttls=off", "does not apply"},
		{"smtp://mail.example.com?tls=1", `unknown parameter "tls"`},
		{"smtp://bob:hunter2@mail.example.com?starttls=off", "without TLS"},
		{"smtp://bob:hunter2@mail.example.com?starttls=opportunistic", "without TLS"},
		{"smtp://bob:hunter2@mail.example.com:port", "invalid port"},
		{"smtp://bob:hunter2 x@mail.example.com%zz", "smtp url"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseSMTPURL(tt.in)
			if err == nil {
				t.Fatalf("got no error, want one about %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestSMTPConfigHidesPassword(t *testing.T) {
	c, err := ParseSMTPURL("smtps://bob:hunter2@mail.example.com")
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("mail on", "smtp", c)
	for name, s := range map[string]string{
		"String": c.String(), "%v": fmt.Sprint(c), "log": logged.String(),
	} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%s shows the password: %s", name, s)
		}
		if !strings.Contains(s, "mail.example.com") {
			t.Errorf("%s lacks the host: %s", name, s)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("smtp://127.0.0.1:25?starttls=off", "SMEK <smek@example.com>", "https://smek.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicURL != "https://smek.example.com" || c.From != "SMEK <smek@example.com>" {
		t.Errorf("got %+v, want the public url without its trailing slash and the from address", c)
	}
	if _, err := ParseConfig("smtp://127.0.0.1", "not an address", "https://x"); err == nil || !strings.Contains(err.Error(), "mail from") {
		t.Errorf("bad from: got %v, want an error naming mail from", err)
	}
	if _, err := ParseConfig("smtp://127.0.0.1", "a@b.c", "smek.example.com"); err == nil || !strings.Contains(err.Error(), "public url") {
		t.Errorf("bad public url: got %v, want an error naming public url", err)
	}
}

// FuzzParseSMTPURL checks that no input panics and that what parses
// survives a round trip through String (which drops only the password).
func FuzzParseSMTPURL(f *testing.F) {
	for _, s := range []string{
		"smtp://mail.example.com", "smtps://u:p@h:465", "smtp://h:25?starttls=off",
		"smtp://[::1]:1025/?starttls=opportunistic", "smtp://u:p%zz@h", "smtp://h?starttls=required&starttls=off",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseSMTPURL(raw)
		if err != nil {
			return
		}
		if c.Host == "" || c.Port < 1 || c.Port > 65535 {
			t.Fatalf("ParseSMTPURL(%q) = %+v: want a host and a port in range", raw, c)
		}
		back, err := ParseSMTPURL(c.String())
		if err != nil {
			t.Fatalf("ParseSMTPURL(%q) = %+v, whose String %q does not parse: %v", raw, c, c.String(), err)
		}
		c.Password = ""
		if back != c {
			t.Fatalf("round trip of %q: got %+v, want %+v", raw, back, c)
		}
	})
}
