package egress

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want string // target.String(), empty when refused
	}{
		{"example.com:443", "example.com:443"},
		{"Example.COM:443", "example.com:443"},
		{"example.com.:443", "example.com.:443"},
		{"webhook.tenant.svc:8443", "webhook.tenant.svc:8443"},
		{"localhost:6443", "localhost:6443"}, // a name: the resolver's answer is judged
		{"a-b.c9:1", "a-b.c9:1"},
		{"x:65535", "x:65535"},
		{"1.2.3.4:443", "1.2.3.4:443"},
		{"127.0.0.1:2379", "127.0.0.1:2379"},
		{"[::1]:443", "[::1]:443"},
		{"[2001:db8::1]:80", "[2001:db8::1]:80"},
		{"[::ffff:127.0.0.1]:443", "[::ffff:127.0.0.1]:443"},

		{"", ""},
		{"example.com", ""},          // no port
		{"example.com:", ""},         // empty port
		{"example.com:0", ""},        // port 0
		{"example.com:65536", ""},    // out of range
		{"example.com:99999", ""},    // out of range
		{"example.com:0443", ""},     // leading zero
		{"example.com:+443", ""},     // sign
		{"example.com:-1", ""},       // negative
		{"example.com:44a", ""},      // not a number
		{"example.com:443 ", ""},     // trailing space
		{"example.com:https", ""},    // service name
		{"user@example.com:443", ""}, // user info
		{"user:pw@example.com:443", ""},
		{"example.com:443/path", ""},
		{"http://example.com:443", ""},
		{"/rpc", ""},
		{"example.com:443?x", ""},
		{"example.com:443#x", ""},
		{"::1:443", ""},              // IPv6 without brackets
		{"[::1]", ""},                // no port
		{"[::1]443", ""},             // no colon
		{"[::1:443", ""},             // no closing bracket
		{"[1.2.3.4]:443", ""},        // IPv4 in brackets
		{"[fe80::1%eth0]:443", ""},   // zone
		{"[fe80::1%25eth0]:443", ""}, // escaped zone
		{"[example.com]:443", ""},    // name in brackets
		{"127.1:443", ""},            // inet_aton shorthand
		{"2130706433:443", ""},       // 127.0.0.1 as a number
		{"0x7f.0.0.1:443", ""},       // hex
		{"0x7f000001:443", ""},       // hex, whole
		{"017700000001:443", ""},     // octal
		{"010.0.0.1:443", ""},        // leading zero
		{"1.2.3.256:443", ""},        // out of range
		{"-example.com:443", ""},     // label starts with a hyphen
		{"example-.com:443", ""},     // label ends with a hyphen
		{"exa_mple.com:443", ""},     // underscore
		{"example..com:443", ""},     // empty label
		{".example.com:443", ""},     // empty first label
		{"exämple.com:443", ""},      // not ASCII
		{"example.com\x00:443", ""},  // NUL
		{"example.com%00:443", ""},   // escape
		{"example.com\\:443", ""},    // backslash
		{strings.Repeat("a", 64) + ".com:443", ""},
		{strings.Repeat("a.", 127) + "com:443", ""}, // 257 characters
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTarget(tt.in)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("parseTarget(%q) = %v, want an error", tt.in, got)
			case tt.want != "" && err != nil:
				t.Errorf("parseTarget(%q): %v, want %s", tt.in, err, tt.want)
			case tt.want != "" && got.String() != tt.want:
				t.Errorf("parseTarget(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseTarget checks that what parseTarget accepts is well formed: a
// valid port, exactly one of name and address, and a string form that
// parses back to the same target.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"example.com:443", "1.2.3.4:80", "[::1]:443", "[::ffff:127.0.0.1]:1",
		"127.1:443", "a@b:1", "[fe80::1%eth0]:443", "x:0", "x:65535", "x.:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTarget(s)
		if err != nil {
			return
		}
		if got.port == 0 {
			t.Fatalf("parseTarget(%q) accepted port 0", s)
		}
		if got.addr.IsValid() == (got.host != "") {
			t.Fatalf("parseTarget(%q) = %+v, want exactly one of host and addr", s, got)
		}
		if got.addr.IsValid() && got.addr.Zone() != "" {
			t.Fatalf("parseTarget(%q) accepted a zone", s)
		}
		if got.host != "" {
			if _, err := netip.ParseAddr(got.host); err == nil {
				t.Fatalf("parseTarget(%q) took address %q for a name", s, got.host)
			}
			if got.host != strings.ToLower(got.host) || strings.ContainsAny(got.host, ":@/[]%") {
				t.Fatalf("parseTarget(%q) = host %q", s, got.host)
			}
		}
		again, err := parseTarget(got.String())
		if err != nil || again != got {
			t.Fatalf("parseTarget(%q) = %s, which parses back as %+v, %v", s, got, again, err)
		}
	})
}
