package awsec2

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// defaultRule is the ACL's catch-all "*" entry: always last, never ours,
// and not counted against the quota.
const defaultRule = 32767

// aclEntry is one network ACL entry, as recorded in Change.Before and
// After. Protocol is AWS's number as text: "-1" (all), "6", "17".
type aclEntry struct {
	Number   int32        `json:"rule_number"`
	Egress   bool         `json:"egress"`
	Action   string       `json:"action"`
	Protocol string       `json:"protocol"`
	CIDR     netip.Prefix `json:"cidr"`
	FromPort int32        `json:"from_port,omitempty"`
	ToPort   int32        `json:"to_port,omitempty"`
	// ICMP type and code, for completeness of the record only.
	ICMPType *int32 `json:"icmp_type,omitempty"`
	ICMPCode *int32 `json:"icmp_code,omitempty"`
}

func fromSDKEntry(e types.NetworkAclEntry) aclEntry {
	x := aclEntry{Number: aws.ToInt32(e.RuleNumber), Egress: aws.ToBool(e.Egress), Action: string(e.RuleAction),
		Protocol: aws.ToString(e.Protocol)}
	cidr := aws.ToString(e.CidrBlock)
	if cidr == "" {
		cidr = aws.ToString(e.Ipv6CidrBlock)
	}
	x.CIDR, _ = netip.ParsePrefix(cidr) // an unparsable one stays invalid and matches nothing
	if hasPorts(x.Protocol) && e.PortRange != nil {
		x.FromPort, x.ToPort = aws.ToInt32(e.PortRange.From), aws.ToInt32(e.PortRange.To)
	}
	if e.IcmpTypeCode != nil {
		x.ICMPType, x.ICMPCode = e.IcmpTypeCode.Type, e.IcmpTypeCode.Code
	}
	return x
}

func hasPorts(proto string) bool { return proto == "6" || proto == "17" }

// protoNumber maps a target's protocol to the ACL's: "" is all traffic.
func protoNumber(proto string) (string, error) {
	switch proto {
	case "":
		return "-1", nil
	case "tcp":
		return "6", nil
	case "udp":
		return "17", nil
	}
	return "", fmt.Errorf("protocol %q is neither tcp, udp nor all", proto)
}

// denyEntry is the egress deny for traffic to p: all traffic when proto
// is "", else the protocol on port (every port when port is 0).
func denyEntry(p netip.Prefix, proto string, port uint16) (aclEntry, error) {
	num, err := protoNumber(proto)
	if err != nil {
		return aclEntry{}, err
	}
	e := aclEntry{Egress: true, Action: "deny", Protocol: num, CIDR: p.Masked()}
	if hasPorts(num) {
		e.FromPort, e.ToPort = int32(port), int32(port)
		if port == 0 {
			e.FromPort, e.ToPort = 0, 65535
		}
	}
	return e, nil
}

// sameRule reports whether a and b are the same entry apart from the
// rule number.
func sameRule(a, b aclEntry) bool {
	if a.Egress != b.Egress || a.Action != b.Action || a.Protocol != b.Protocol || a.CIDR.Masked() != b.CIDR.Masked() {
		return false
	}
	return !hasPorts(a.Protocol) || (a.FromPort == b.FromPort && a.ToPort == b.ToPort)
}

// overlaps reports whether some packet matches both a and b: the same
// direction and family, overlapping CIDRs, protocols and ports.
func overlaps(a, b aclEntry) bool {
	if a.Egress != b.Egress || !a.CIDR.IsValid() || !b.CIDR.IsValid() || a.CIDR.Addr().Is4() != b.CIDR.Addr().Is4() ||
		!a.CIDR.Overlaps(b.CIDR) {
		return false
	}
	if a.Protocol != "-1" && b.Protocol != "-1" && a.Protocol != b.Protocol {
		return false
	}
	if hasPorts(a.Protocol) && a.Protocol == b.Protocol {
		return a.FromPort <= b.ToPort && b.FromPort <= a.ToPort
	}
	return true
}

// firstAllow is the lowest rule number of an allow entry that matches
// some of want's traffic: a deny numbered at or after it does not hold
// for that traffic, since the first matching entry wins. With none, it is
// the default rule's number.
func firstAllow(entries []aclEntry, want aclEntry) int32 {
	first := int32(defaultRule)
	for _, e := range entries {
		if e.Action == "allow" && e.Number < first && overlaps(e, want) {
			first = e.Number
		}
	}
	return first
}

// usable reports whether rule number n may hold want: inside band, before
// the first matching allow, and free in want's direction (IPv4 and IPv6
// entries share the numbers). taken holds numbers this plan already used.
func usable(n int32, band [2]int32, entries []aclEntry, want aclEntry, taken map[int32]bool) bool {
	if n < band[0] || n > band[1] || n >= firstAllow(entries, want) || taken[n] {
		return false
	}
	return !slices.ContainsFunc(entries, func(e aclEntry) bool { return e.Egress == want.Egress && e.Number == n })
}

// freeNumber is the first usable number at or after from, wrapping round
// to the band's start.
func freeNumber(from int32, band [2]int32, entries []aclEntry, want aclEntry, taken map[int32]bool) (int32, bool) {
	for n := max(from, band[0]); n <= band[1]; n++ {
		if usable(n, band, entries, want, taken) {
			return n, true
		}
	}
	for n := band[0]; n < from && n <= band[1]; n++ {
		if usable(n, band, entries, want, taken) {
			return n, true
		}
	}
	return 0, false
}

// existingDeny is the number of an entry equal to want that already
// holds (inside band, before the first matching allow), if any.
func existingDeny(band [2]int32, entries []aclEntry, want aclEntry) (int32, bool) {
	limit := firstAllow(entries, want)
	best, found := int32(0), false
	for _, e := range entries {
		if sameRule(e, want) && e.Number >= band[0] && e.Number <= band[1] && e.Number < limit && (!found || e.Number < best) {
			best, found = e.Number, true
		}
	}
	return best, found
}

// entryAt returns the entry with number n in the direction.
func entryAt(entries []aclEntry, n int32, egress bool) (aclEntry, bool) {
	for _, e := range entries {
		if e.Number == n && e.Egress == egress {
			return e, true
		}
	}
	return aclEntry{}, false
}

// countEntries counts the entries of one direction and family that the
// quota counts (all but the default rule).
func countEntries(entries []aclEntry, egress, v6 bool) int {
	n := 0
	for _, e := range entries {
		if e.Egress == egress && e.Number != defaultRule && e.CIDR.IsValid() && e.CIDR.Addr().Is6() == v6 {
			n++
		}
	}
	return n
}

// mergeLimit is the largest block merging may produce: a /24 of IPv4, the
// same 256 addresses of IPv6.
func mergeLimit(v6 bool) int {
	if v6 {
		return 120
	}
	return 24
}

// aggregate merges prefixes into the fewest CIDRs that cover exactly the
// same addresses, none larger than mergeLimit: two halves of a block
// become the block. It never covers an address that was not given, so
// it blocks nobody we were not asked to block.
func aggregate(prefixes []netip.Prefix) []netip.Prefix {
	set := map[netip.Prefix]bool{}
	for _, p := range prefixes {
		set[p.Masked()] = true
	}
	for changed := true; changed; {
		changed = false
		for p := range set {
			if p.Bits() <= mergeLimit(p.Addr().Is6()) || !set[p] {
				continue
			}
			parent, _ := p.Addr().Prefix(p.Bits() - 1)
			lo, hi := halves(parent)
			if set[lo] && set[hi] {
				delete(set, lo)
				delete(set, hi)
				set[parent] = true
				changed = true
			}
		}
	}
	out := make([]netip.Prefix, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Addr().Less(out[j].Addr()) || (out[i].Addr() == out[j].Addr() && out[i].Bits() < out[j].Bits())
	})
	return out
}

// halves splits p into its two sub-prefixes.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	b := p.Addr().AsSlice()
	bit := p.Bits() // the bit that tells the halves apart
	b[bit/8] |= 0x80 >> (bit % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	if p.Addr().Is4() {
		hiAddr = hiAddr.Unmap()
	}
	return lo, netip.PrefixFrom(hiAddr, p.Bits()+1)
}
