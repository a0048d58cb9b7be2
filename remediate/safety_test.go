package remediate

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/abuse"
)

func target(ip string, port uint16, proto string) abuse.Target {
	return abuse.Target{IP: netip.MustParseAddr(ip), Port: port, Protocol: proto}
}

func TestSafe(t *testing.T) {
	allow := []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("198.51.100.7/32"), // a bare address in the config
		netip.MustParsePrefix("2001:db8:1::/48"),
	}
	tests := []struct {
		ip   string
		want string // "" kept, else a part of the refusal's reason
	}{
		// The allowlist, with the entry that matched.
		{"203.0.113.5", "203.0.113.5 is in remediate.allowlist (203.0.113.0/24)"},
		{"198.51.100.7", "198.51.100.7 is in remediate.allowlist (198.51.100.7/32)"},
		{"2001:db8:1::5", "2001:db8:1::5 is in remediate.allowlist (2001:db8:1::/48)"},
		// Documentation ranges outside the allowlist are ordinary addresses.
		{"198.51.100.8", ""},
		{"192.0.2.10", ""},
		{"2001:db8::1", ""},
		// Every built-in class.
		{"10.1.2.3", "10.1.2.3 is in a private range (10.0.0.0/8)"},
		{"172.31.255.1", "in a private range (172.16.0.0/12)"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "in a private range (192.168.0.0/16)"},
		{"100.64.0.1", "carrier-grade NAT range (100.64.0.0/10)"},
		{"100.128.0.1", ""},
		{"127.0.0.1", "loopback"},
		{"169.254.10.1", "link-local (169.254.0.0/16)"},
		{"0.0.0.0", "unspecified"},
		{"224.0.0.251", "multicast"},
		{"255.255.255.255", "the broadcast address"},
		{"169.254.169.254", "the instance metadata service (169.254.169.254/32)"},
		{"169.254.169.253", "the Amazon DNS server"},
		{"169.254.169.123", "Amazon Time Sync"},
		{"8.8.8.8", "Google Public DNS"},
		{"8.8.4.4", "Google Public DNS"},
		{"1.1.1.1", "Cloudflare DNS"},
		{"1.0.0.1", "Cloudflare DNS"},
		{"9.9.9.9", "Quad9 DNS"},
		{"8.8.8.9", ""},
		// IPv6.
		{"::", "the unspecified address"},
		{"::1", "loopback"},
		{"fe80::1", "link-local (fe80::/10)"},
		{"fd12:3456::1", "private (unique local) range (fc00::/7)"},
		{"ff02::1", "multicast"},
		{"fd00:ec2::254", "the instance metadata service (fd00:ec2::254/128)"},
		{"fd00:ec2::253", "the Amazon DNS server"},
		{"fd00:ec2::123", "Amazon Time Sync"},
		{"2001:4860:4860::8888", "Google Public DNS"},
		{"2001:4860:4860::8844", "Google Public DNS"},
		{"2606:4700:4700::1111", "Cloudflare DNS"},
		{"2a01:4f8::1", ""},
		// An IPv4 address in IPv6 clothing is judged as IPv4.
		{"::ffff:10.0.0.1", "10.0.0.1 is in a private range"},
		{"::ffff:192.0.2.1", ""},
		{"64:ff9b::808:808", "is 8.8.8.8 through NAT64: 8.8.8.8 is Google Public DNS"},
		{"64:ff9b::c000:201", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			in := target(tt.ip, 22, "tcp")
			kept, refused := Safe([]abuse.Target{in}, Policy{Allowlist: allow})
			if tt.want == "" {
				if len(kept) != 1 || len(refused) != 0 {
					t.Errorf("Safe(%s) = %v, %v, want it kept", tt.ip, kept, refused)
				}
				return
			}
			if len(kept) != 0 || len(refused) != 1 || !strings.Contains(refused[0].Reason, tt.want) {
				t.Fatalf("Safe(%s) = %v, %+v, want refused with %q", tt.ip, kept, refused, tt.want)
			}
			if want := in.IP.Unmap().String() + " port 22/tcp"; refused[0].What != want {
				t.Errorf("Safe(%s): refusal names %q, want %q", tt.ip, refused[0].What, want)
			}
		})
	}
}

func TestSafeKeepsOrderAndDropsDuplicates(t *testing.T) {
	in := []abuse.Target{
		target("192.0.2.1", 22, "tcp"), target("10.0.0.1", 0, ""), target("192.0.2.1", 22, "tcp"),
		target("192.0.2.1", 23, "tcp"), {}, target("::ffff:192.0.2.1", 22, "tcp"),
	}
	kept, refused := Safe(in, Policy{})
	want := []abuse.Target{target("192.0.2.1", 22, "tcp"), target("192.0.2.1", 23, "tcp")}
	if !reflect.DeepEqual(kept, want) {
		t.Errorf("Safe kept %v, want %v", kept, want)
	}
	if len(refused) != 2 || refused[0].What != "10.0.0.1" || refused[1].Reason != "not a valid IP address" {
		t.Errorf("Safe refused %+v, want 10.0.0.1 and the invalid address", refused)
	}
}

func TestPrefixProtected(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.77/32")}
	tests := []struct {
		prefix string
		want   string
	}{
		{"0.0.0.0/0", "would block every address"},
		{"::/0", "would block every address"},
		{"203.0.113.0/24", ""},
		{"203.0.113.5/32", ""},
		{"192.0.2.0/24", "overlaps remediate.allowlist (192.0.2.77/32)"},
		{"8.8.0.0/16", "overlaps 8.8.8.8/32, Google Public DNS"},
		{"10.0.0.0/7", "overlaps 10.0.0.0/8, in a private range"},
		{"10.0.0.5/32", "10.0.0.5 is in a private range"},
		{"2001:db8::/32", ""},
		{"fd00::/8", "overlaps fd00:ec2::254/128, the instance metadata service"},
	}
	for _, tt := range tests {
		why, bad := PrefixProtected(netip.MustParsePrefix(tt.prefix), allow)
		if bad != (tt.want != "") || !strings.Contains(why, tt.want) {
			t.Errorf("PrefixProtected(%s) = %q, %v, want %q", tt.prefix, why, bad, tt.want)
		}
	}
	if _, bad := PrefixProtected(netip.Prefix{}, nil); !bad {
		t.Errorf("PrefixProtected(zero prefix) = not protected, want refused")
	}
}
