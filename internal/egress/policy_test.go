package egress

import (
	"net/netip"
	"testing"
)

func TestPolicyPermits(t *testing.T) {
	host := []netip.Addr{
		netip.MustParseAddr("203.0.114.7"),  // the host's public IPv4
		netip.MustParseAddr("2a01:4f8::42"), // the host's public IPv6
	}
	tests := []struct {
		addr string
		want bool
	}{
		// Public unicast.
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"203.0.114.8", true}, // the host's neighbour
		{"2606:4700:4700::1111", true},
		{"2a01:4f8::43", true},
		{"64:ff9b::808:808", true},     // NAT64 of 8.8.8.8
		{"2002:808:808::1", true},      // 6to4 of 8.8.8.8
		{"::ffff:8.8.8.8", true},       // mapped public
		{"100.63.255.255", true},       // just below CGNAT
		{"100.128.0.0", true},          // just above CGNAT
		{"172.15.255.255", true},       // just below 172.16/12
		{"172.32.0.0", true},           // just above 172.16/12
		{"169.253.255.255", true},      // just below link-local
		{"11.0.0.0", true},             // just above 10/8
		{"223.255.255.255", true},      // just below multicast
		{"fbff:ffff::1", false},        // reserved, not global unicast
		{"2001:200::1", true},          // first APNIC block after 2001::/23
		{"2001:db9::1", true},          // just after documentation
		{"203.0.112.255", true},        // just below TEST-NET-3
		{"198.17.255.255", true},       // just below benchmarking
		{"192.0.1.1", true},            // between 192.0.0/24 and 192.0.2/24
		{"192.169.0.0", true},          // just above 192.168/16
		{"126.255.255.255", true},      // just below loopback
		{"128.0.0.0", true},            // just above loopback
		{"1.0.0.0", true},              // just above 0/8
		{"2001:4860:4860::8888", true}, // Google DNS
		{"64:ff9b::1.1.1.1", true},     // NAT64 of 1.1.1.1, dotted

		// Loopback, unspecified, "this network".
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"::1", false},
		{"::", false},
		// Link-local and the metadata service.
		{"169.254.169.254", false},
		{"169.254.0.1", false},
		{"fe80::1", false},
		{"febf:ffff::1", false},
		{"fd00:ec2::254", false}, // AWS metadata over IPv6 (unique local)
		// Private and CGNAT.
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"fc00::1", false},
		{"fdff:ffff::1", false},
		// Multicast and broadcast.
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"ff02::1", false},
		{"ff0e::1", false},
		// Other special purpose.
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"2001:db8::1", false},
		{"2001::1", false}, // Teredo
		{"100::1", false},
		{"fec0::1", false},
		{"3fff::1", false},
		{"5f00::1", false},
		// IPv4-mapped IPv6 forms of denied addresses.
		{"::ffff:127.0.0.1", false},
		{"::ffff:7f00:1", false},
		{"::ffff:0.0.0.0", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:172.16.0.1", false},
		{"::ffff:192.168.1.1", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:100.64.0.1", false},
		{"::ffff:224.0.0.1", false},
		{"::ffff:255.255.255.255", false},
		{"::ffff:203.0.114.7", false}, // the host, mapped
		// IPv4-compatible and translated forms.
		{"::127.0.0.1", false},
		{"::10.0.0.1", false},
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b::10.0.0.1", false},  // NAT64 of 10.0.0.1
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b:1::a00:1", false},   // local-use NAT64
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"2002:a00:1::1", false},      // 6to4 of 10.0.0.1
		// The host's own addresses.
		{"203.0.114.7", false},
		{"2a01:4f8::42", false},
		{"2a01:4f8::42%eth0", false},
	}
	p := policy{}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := p.permits(a, host); got != tt.want {
				t.Errorf("permits(%v) = %v, want %v", a, got, tt.want)
			}
		})
	}
}

func TestPolicyAllowComesFirst(t *testing.T) {
	host := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.168.1.5")}
	p := policy{allow: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.96.0.0/12"),
	}}
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},        // allowed, although loopback and the host's
		{"::ffff:127.0.0.1", true}, // the mapped form of an allowed address
		{"127.0.0.2", false},       // the rest of loopback stays denied
		{"10.96.0.10", true},       // inside the allowed private prefix
		{"10.112.0.1", false},      // outside it
		{"192.168.1.5", false},     // a host address
		{"8.8.8.8", true},          // public is still allowed
		{"169.254.169.254", false}, // metadata stays denied
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := p.permits(a, host); got != tt.want {
			t.Errorf("permits(%v) = %v, want %v", a, got, tt.want)
		}
	}
}

func TestInterfaceAddrsHasLoopback(t *testing.T) {
	addrs, err := interfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IsLoopback() {
			return
		}
	}
	t.Errorf("interface addresses %v lack loopback", addrs)
}
