package remediate

import (
	"fmt"
	"net/netip"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// protectedRange is a built-in range that is never blocked, with the words
// a refusal uses for it ("8.8.8.8 is Google Public DNS (8.8.8.8/32), ...").
type protectedRange struct {
	prefix netip.Prefix
	what   string
}

func pr(cidr, what string) protectedRange {
	return protectedRange{netip.MustParsePrefix(cidr), what}
}

// protected lists what blocking would break the instance itself or the
// network it stands on, whatever a notice claims. The most specific match
// names the refusal, so the metadata service is named before link-local.
//
// Documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) are deliberately absent: reports, tests and demos use them
// as ordinary third parties.
//
// The NTP pool is absent too: pool.ntp.org names thousands of volunteers'
// hosts, rotated by DNS every hour, so no address list describes it, and
// any of those hosts can be a real victim. Instances on AWS take their time
// from Amazon Time Sync (protected below); a host that relies on a fixed
// public NTP server adds it to remediate.allowlist.
var protected = []protectedRange{
	pr("0.0.0.0/8", `in "this network" (unspecified)`),
	pr("10.0.0.0/8", "in a private range"),
	pr("100.64.0.0/10", "in the carrier-grade NAT range"),
	pr("127.0.0.0/8", "loopback"),
	pr("169.254.0.0/16", "link-local"),
	pr("169.254.169.254/32", "the instance metadata service"),
	pr("169.254.169.253/32", "the Amazon DNS server"),
	pr("169.254.169.123/32", "Amazon Time Sync"),
	pr("172.16.0.0/12", "in a private range"),
	pr("192.168.0.0/16", "in a private range"),
	pr("224.0.0.0/4", "multicast"),
	pr("255.255.255.255/32", "the broadcast address"),
	pr("::/128", "the unspecified address"),
	pr("::1/128", "loopback"),
	pr("fc00::/7", "in a private (unique local) range"),
	pr("fd00:ec2::254/128", "the instance metadata service"),
	pr("fd00:ec2::253/128", "the Amazon DNS server"),
	pr("fd00:ec2::123/128", "Amazon Time Sync"),
	pr("fe80::/10", "link-local"),
	pr("ff00::/8", "multicast"),
	// Public resolvers that instances are commonly configured with: a block
	// would break the instance's name resolution, and a notice naming them
	// is far likelier to be a resolver's own reflection report than abuse.
	pr("8.8.8.8/32", "Google Public DNS, a resolver instances use"),
	pr("8.8.4.4/32", "Google Public DNS, a resolver instances use"),
	pr("1.1.1.1/32", "Cloudflare DNS, a resolver instances use"),
	pr("1.0.0.1/32", "Cloudflare DNS, a resolver instances use"),
	pr("9.9.9.9/32", "Quad9 DNS, a resolver instances use"),
	pr("149.112.112.112/32", "Quad9 DNS, a resolver instances use"),
	pr("2001:4860:4860::8888/128", "Google Public DNS, a resolver instances use"),
	pr("2001:4860:4860::8844/128", "Google Public DNS, a resolver instances use"),
	pr("2606:4700:4700::1111/128", "Cloudflare DNS, a resolver instances use"),
	pr("2606:4700:4700::1001/128", "Cloudflare DNS, a resolver instances use"),
	pr("2620:fe::fe/128", "Quad9 DNS, a resolver instances use"),
	pr("2620:fe::9/128", "Quad9 DNS, a resolver instances use"),
}

// nat64 is the well-known NAT64 prefix (RFC 6052), which AWS's DNS64 uses:
// 64:ff9b::808:808 is 8.8.8.8 reached through a NAT gateway.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Safe splits targets into those that may be blocked and those that must
// not, each refusal saying why. A target is refused when its address is
// invalid, in p.Allowlist, or in a built-in protected range (private,
// loopback, link-local, unspecified, multicast, broadcast, the EC2 metadata,
// DNS and time services, common public resolvers). Duplicates are dropped.
// Safe is pure: the same input gives the same output, in the same order.
func Safe(targets []abuse.Target, p Policy) (kept []abuse.Target, refused []Refusal) {
	seen := make(map[abuse.Target]bool, len(targets))
	for _, t := range targets {
		t.IP = t.IP.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
		if seen[t] {
			continue
		}
		seen[t] = true
		if why, ok := addrProtected(t.IP, p.Allowlist); ok {
			refused = append(refused, Refusal{What: t.String(), Reason: why})
			continue
		}
		kept = append(kept, t)
	}
	return kept, refused
}

// addrProtected reports whether a must never be blocked, and why.
func addrProtected(a netip.Addr, allowlist []netip.Prefix) (string, bool) {
	if !a.IsValid() {
		return "not a valid IP address", true
	}
	a = a.WithZone("")
	for _, q := range allowlist {
		if q.Contains(a) {
			return fmt.Sprintf("%s is in remediate.allowlist (%s)", a, q), true
		}
	}
	if m, ok := mostSpecific(netip.PrefixFrom(a, a.BitLen())); ok {
		return fmt.Sprintf("%s is %s (%s), never blocked", a, m.what, m.prefix), true
	}
	if nat64.Contains(a) {
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:16]))
		if why, ok := addrProtected(v4, allowlist); ok {
			return fmt.Sprintf("%s is %s through NAT64: %s", a, v4, why), true
		}
	}
	return "", false
}

// PrefixProtected reports whether an action's target prefix p overlaps
// anything that must never be blocked, and why. It guards the plan against a
// backend that widens targets (merging /32s into a /24 that holds an
// allowlisted host) and against 0.0.0.0/0 and ::/0.
func PrefixProtected(p netip.Prefix, allowlist []netip.Prefix) (string, bool) {
	if !p.IsValid() {
		return "not a valid prefix", true
	}
	if p.Bits() == 0 {
		return fmt.Sprintf("%s would block every address, never blocked", p), true
	}
	if p.IsSingleIP() {
		return addrProtected(p.Addr(), allowlist)
	}
	p = p.Masked()
	for _, q := range allowlist {
		if q.Overlaps(p) {
			return fmt.Sprintf("%s overlaps remediate.allowlist (%s)", p, q), true
		}
	}
	if m, ok := mostSpecific(p); ok {
		return fmt.Sprintf("%s overlaps %s, %s, never blocked", p, m.prefix, m.what), true
	}
	return "", false
}

// mostSpecific returns the longest built-in protected range that overlaps p.
func mostSpecific(p netip.Prefix) (protectedRange, bool) {
	var (
		best  protectedRange
		found bool
	)
	for _, r := range protected {
		if r.prefix.Overlaps(p) && (!found || r.prefix.Bits() > best.prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}
