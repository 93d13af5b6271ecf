package egress

import (
	"net"
	"net/netip"
)

// deniedPrefixes are the destinations a tenant must never reach through the
// proxy: this host itself, the operator's private networks, and everything
// that is not public unicast (IANA special-purpose registries). IPv4-mapped
// IPv6 addresses are unmapped before they are checked against this list.
// Local-use NAT64 (64:ff9b:1::/48), which translates into the operator's
// networks, lies outside 2000::/3 and is denied with the rest of it.
var deniedPrefixes = mustPrefixes(
	// IPv4
	"0.0.0.0/8",       // "this network"; 0.0.0.0 reaches loopback on Linux
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // carrier-grade NAT (also Tailscale's range)
	"127.0.0.0/8",     // loopback: SMEK's API, every tenant's etcd and API server
	"169.254.0.0/16",  // link-local, with the cloud metadata service 169.254.169.254
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking, used as internal space by some networks
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, with the limited broadcast 255.255.255.255

	// IPv6, inside global unicast 2000::/3: whatever lies outside it
	// (loopback, unique local fc00::/7, link-local fe80::/10, multicast
	// ff00::/8...) is not public and is denied by public.
	"2001::/23",     // IETF protocol assignments, Teredo
	"2001:db8::/32", // documentation
	"3fff::/20",     // documentation
)

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Prefixes that embed an IPv4 address, which is judged in their place: a
// public IPv4 address behind the well-known NAT64 prefix stays reachable on an
// IPv6-only host, 64:ff9b::10.0.0.1 does not.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// policy decides which addresses the proxy may dial.
type policy struct {
	// allow are exceptions, checked before anything is denied.
	allow []netip.Prefix
	// hostAddrs lists the addresses of this host's interfaces.
	hostAddrs func() ([]netip.Addr, error)
}

// permits reports whether a may be dialed; host are this host's addresses.
func (p policy) permits(a netip.Addr, host []netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	for _, pre := range p.allow {
		if pre.Contains(a) {
			return true
		}
	}
	for _, h := range host {
		if h.Unmap().WithZone("") == a {
			return false
		}
	}
	return public(a)
}

// public reports whether a is public unicast. a must be unmapped.
func public(a netip.Addr) bool {
	if v4, ok := embeddedIPv4(a); ok {
		return public(v4)
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return false
	}
	for _, pre := range deniedPrefixes {
		if pre.Contains(a) {
			return false
		}
	}
	// Belt and braces: whatever the list above misses, netip knows.
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// embeddedIPv4 returns the IPv4 address inside a NAT64 or 6to4 address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// interfaceAddrs lists the addresses of this host's network interfaces.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
