// Package registrymirror holds the operator's registry mirrors
// (`provisioner serve --registry-mirror docker.io=https://mirror.example`):
// the parser that checks them and the order in which a node tries them.
// Every node, whatever its backend, tries a registry's mirrors in the
// order given, then the registry itself.
package registrymirror

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Wildcard is the registry name that stands for every registry without
// mirrors of its own, as in k3s's registries.yaml (containerd's
// certs.d/_default).
const Wildcard = "*"

// Mirror is one endpoint a node tries for a registry's images.
type Mirror struct {
	// Registry is the registry's host[:port] as image references name it
	// (docker.io, ghcr.io, localhost:5000), or Wildcard.
	Registry string
	// URL is the mirror's absolute http or https URL, without user info,
	// query or fragment.
	URL string
}

// String is the mirror as the flag takes it, REGISTRY=URL.
func (m Mirror) String() string { return m.Registry + "=" + m.URL }

// Parse parses a comma-separated list of REGISTRY=URL entries (the value of
// one --registry-mirror, or of SMEK_REGISTRY_MIRROR); empty entries are
// skipped. Mirror URLs therefore cannot hold a comma.
func Parse(list string) ([]Mirror, error) {
	var out []Mirror
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		m, err := ParseOne(f)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ParseOne parses one REGISTRY=URL entry.
func ParseOne(s string) (Mirror, error) {
	reg, raw, ok := strings.Cut(s, "=")
	if !ok {
		return Mirror{}, fmt.Errorf("%q is not REGISTRY=URL, e.g. docker.io=https://mirror.example", s)
	}
	if err := checkRegistry(reg); err != nil {
		return Mirror{}, err
	}
	u, err := checkURL(raw)
	if err != nil {
		return Mirror{}, fmt.Errorf("mirror of %s: %w", reg, err)
	}
	return Mirror{Registry: reg, URL: u}, nil
}

// Append adds ms to list, refusing an entry already there: the same
// registry and the same URL twice is a mistake, not a second try.
func Append(list []Mirror, ms ...Mirror) ([]Mirror, error) {
	for _, m := range ms {
		for _, o := range list {
			if o.Registry == m.Registry && o.URL == m.URL {
				return nil, fmt.Errorf("%s is given twice", m)
			}
		}
		list = append(list, m)
	}
	return list, nil
}

// Registries returns the registries that have mirrors, in the order they
// first appear, and each one's mirror URLs in the order given.
func Registries(ms []Mirror) ([]string, map[string][]string) {
	var regs []string
	urls := map[string][]string{}
	for _, m := range ms {
		if _, seen := urls[m.Registry]; !seen {
			regs = append(regs, m.Registry)
		}
		urls[m.Registry] = append(urls[m.Registry], m.URL)
	}
	return regs, urls
}

// For returns the mirror URLs a node tries for reg: reg's own, else the
// wildcard's (containerd uses a registry's own hosts.toml when there is
// one, _default otherwise).
func For(ms []Mirror, reg string) []string {
	_, urls := Registries(ms)
	if u, ok := urls[reg]; ok {
		return u
	}
	return urls[Wildcard]
}

// checkRegistry accepts host[:port] as an image reference names a
// registry, lower-case, or Wildcard.
func checkRegistry(reg string) error {
	if reg == Wildcard {
		return nil
	}
	if reg == "" {
		return errors.New("the registry is empty: give REGISTRY=URL, e.g. docker.io=https://mirror.example")
	}
	host, port := reg, ""
	if h, p, err := net.SplitHostPort(reg); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p != strconv.Itoa(n) {
			return fmt.Errorf("registry %q: the port must be 1 to 65535", reg)
		}
	}
	if strings.Contains(host, ":") {
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && strings.HasPrefix(reg, "[") && port != "" {
			return nil
		}
		return fmt.Errorf("registry %q must be a host[:port] like docker.io or localhost:5000 (an IPv6 address as [::1]:5000)", reg)
	}
	if port == "" && strings.HasPrefix(reg, "[") {
		return fmt.Errorf("registry %q must be a host[:port] like docker.io or localhost:5000 (an IPv6 address as [::1]:5000)", reg)
	}
	if !validHostname(host) {
		return fmt.Errorf("registry %q must be a host[:port] like docker.io or localhost:5000: lower-case letters, digits, '-' and '.' (or %q for every registry)", reg, Wildcard)
	}
	return nil
}

// validHostname says whether h is a lower-case DNS name or an IPv4
// address.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkURL returns the mirror URL as it is written to the nodes. It must
// be absolute http or https with a host, and carry no user info (a
// password in a URL ends up in logs and in files nodes' tenants can read),
// query or fragment (a registry client drops them). Errors do not repeat
// the URL: a refused one may hold a secret.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", errors.New("the URL does not parse")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("the URL must be an absolute http:// or https:// URL")
	case u.Opaque != "" || u.Host == "":
		return "", errors.New("the URL has no host")
	case u.User != nil:
		return "", errors.New("the URL must not hold user info: credentials do not belong in a mirror URL")
	case u.RawQuery != "" || u.ForceQuery:
		return "", errors.New("the URL must not have a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", errors.New("the URL must not have a fragment")
	}
	if err := checkRegistry(u.Host); err != nil || u.Host == Wildcard {
		return "", fmt.Errorf("the URL's host %q must be a lower-case host[:port]", u.Host)
	}
	s := u.String()
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return "", errors.New("the URL must be printable ASCII without quotes or backslashes")
		}
	}
	return s, nil
}

// ContainerdHost is the mirror URL as a host entry of containerd's
// hosts.toml, written as k3s writes it: a URL without a path, or with
// "/" or "/v2", is the registry API's root (…/v2); any other path is the
// API's root itself, which containerd must not extend (override_path).
func ContainerdHost(mirrorURL string) (host string, overridePath bool) {
	u, err := url.Parse(mirrorURL)
	if err != nil {
		return mirrorURL, false
	}
	switch u.Path {
	case "", "/", "/v2":
		u.Path = "/v2"
		return u.String(), false
	}
	return u.String(), true
}
