package egress

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// target is the destination of one CONNECT request.
type target struct {
	// host is a lower-case DNS name; empty when addr is set.
	host string
	// addr is the destination when the request named an IP literal.
	addr netip.Addr
	port uint16
}

// String returns the target as host:port, IPv6 literals in brackets.
func (t target) String() string {
	if t.addr.IsValid() {
		return netip.AddrPortFrom(t.addr, t.port).String()
	}
	return t.host + ":" + strconv.Itoa(int(t.port))
}

var (
	errNoPort      = errors.New("missing port")
	errBadPort     = errors.New("invalid port")
	errBadHost     = errors.New("invalid host")
	errTooLong     = errors.New("target too long")
	errNotHostPort = errors.New("not in host:port form")
)

// parseTarget parses the request target of a CONNECT request, which must be
// exactly host:port (RFC 9110 9.3.6): a DNS name, an IPv4 literal or an IPv6
// literal in brackets, and a decimal port from 1 to 65535. It refuses
// whatever a lenient parser would have to guess about: user info, paths,
// zones, leading zeros, and numeric-looking names such as "127.1" or
// "0x7f.1" that some resolvers turn into addresses.
func parseTarget(s string) (target, error) {
	if len(s) > 300 {
		return target{}, errTooLong
	}
	if strings.ContainsAny(s, "@/?#%\\ ") {
		return target{}, errNotHostPort
	}
	var hostPart, portPart string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return target{}, errBadHost
		}
		hostPart, portPart = s[1:end], s[end+1:]
		if !strings.HasPrefix(portPart, ":") {
			return target{}, errNoPort
		}
		a, err := netip.ParseAddr(hostPart)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return target{}, errBadHost
		}
		port, err := parsePort(portPart[1:])
		if err != nil {
			return target{}, err
		}
		return target{addr: a, port: port}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return target{}, errNoPort
	}
	hostPart, portPart = s[:i], s[i+1:]
	if strings.Contains(hostPart, ":") { // IPv6 without brackets
		return target{}, errBadHost
	}
	port, err := parsePort(portPart)
	if err != nil {
		return target{}, err
	}
	if a, err := netip.ParseAddr(hostPart); err == nil {
		return target{addr: a, port: port}, nil
	}
	if !validHostname(hostPart) {
		return target{}, errBadHost
	}
	return target{host: strings.ToLower(hostPart), port: port}, nil
}

// parsePort parses a decimal port from 1 to 65535 without sign or leading zero.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errNoPort
	}
	if len(s) > 5 || s[0] == '0' {
		return 0, errBadPort
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errBadPort
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, errBadPort
	}
	return uint16(n), nil
}

// validHostname reports whether s is a DNS name of letters, digits and
// hyphens (RFC 1123), with an optional final dot, whose last label starts
// with a letter: no top-level domain is numeric, and a numeric last label is
// how "127.1" and "2130706433" pose as names.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !isLetter(c) && !('0' <= c && c <= '9') && c != '-' {
				return false
			}
		}
	}
	return isLetter(labels[len(labels)-1][0])
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
