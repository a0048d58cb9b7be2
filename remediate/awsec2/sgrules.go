package awsec2

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// perm is one security group rule with a single destination (a CIDR, a
// group or a prefix list): the unit AWS keeps, and the unit we compare,
// revoke and authorize. Proto is "-1", "tcp", "udp", "icmp", "icmpv6" or
// another protocol number.
type perm struct {
	Proto      string
	From, To   int32
	CIDR       string // IPv4 or IPv6
	Group      string
	PrefixList string
	Desc       string
}

func (p perm) key() string {
	return fmt.Sprintf("%s %d-%d %s%s%s", p.Proto, p.From, p.To, p.CIDR, p.Group, p.PrefixList)
}

func (p perm) String() string {
	dst := p.CIDR + p.Group + p.PrefixList
	if p.Proto == "-1" {
		return "all traffic to " + dst
	}
	return fmt.Sprintf("%s %d-%d to %s", p.Proto, p.From, p.To, dst)
}

// protoNames maps the numbers AWS may answer to the names it takes.
var protoNames = map[string]string{"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "-1"}

func permsOf(ps []types.IpPermission) []perm {
	var out []perm
	for _, p := range ps {
		base := perm{Proto: aws.ToString(p.IpProtocol), From: aws.ToInt32(p.FromPort), To: aws.ToInt32(p.ToPort)}
		if n, ok := protoNames[base.Proto]; ok {
			base.Proto = n
		}
		if base.Proto == "-1" {
			base.From, base.To = 0, 0
		}
		for _, r := range p.IpRanges {
			x := base
			x.CIDR, x.Desc = aws.ToString(r.CidrIp), aws.ToString(r.Description)
			out = append(out, x)
		}
		for _, r := range p.Ipv6Ranges {
			x := base
			x.CIDR, x.Desc = aws.ToString(r.CidrIpv6), aws.ToString(r.Description)
			out = append(out, x)
		}
		for _, g := range p.UserIdGroupPairs {
			x := base
			x.Group, x.Desc = aws.ToString(g.GroupId), aws.ToString(g.Description)
			out = append(out, x)
		}
		for _, l := range p.PrefixListIds {
			x := base
			x.PrefixList, x.Desc = aws.ToString(l.PrefixListId), aws.ToString(l.Description)
			out = append(out, x)
		}
	}
	return out
}

// sdkPerms turns perms back into one IpPermission each.
func sdkPerms(ps []perm) []types.IpPermission {
	var out []types.IpPermission
	for _, p := range ps {
		x := types.IpPermission{IpProtocol: aws.String(p.Proto)}
		if p.Proto != "-1" {
			x.FromPort, x.ToPort = aws.Int32(p.From), aws.Int32(p.To)
		}
		desc := aws.String(p.Desc)
		if p.Desc == "" {
			desc = nil
		}
		switch {
		case p.Group != "":
			x.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(p.Group), Description: desc}}
		case p.PrefixList != "":
			x.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(p.PrefixList), Description: desc}}
		case strings.Contains(p.CIDR, ":"):
			x.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(p.CIDR), Description: desc}}
		default:
			x.IpRanges = []types.IpRange{{CidrIp: aws.String(p.CIDR), Description: desc}}
		}
		out = append(out, x)
	}
	return out
}

// union merges rule lists, each rule once, in order.
func union(lists ...[]perm) []perm {
	var out []perm
	for _, l := range lists {
		for _, p := range l {
			if !slices.ContainsFunc(out, func(q perm) bool { return q.key() == p.key() }) {
				out = append(out, p)
			}
		}
	}
	return out
}

// diff returns the rules of a that are not in b.
func diff(a, b []perm) []perm {
	var out []perm
	for _, p := range a {
		if !slices.ContainsFunc(b, func(q perm) bool { return q.key() == p.key() }) {
			out = append(out, p)
		}
	}
	return out
}

// traffic is an abused protocol ("" for all, "tcp", "udp") and port (0
// for all).
type traffic struct {
	Proto string
	Port  uint16
}

func (t traffic) String() string { return describeTraffic(t.Proto, t.Port) }

// tag writes t for the removed-traffic tag: "tcp/22", "all/0".
func (t traffic) tag() string {
	p := t.Proto
	if p == "" {
		p = "all"
	}
	return fmt.Sprintf("%s/%d", p, t.Port)
}

// matchesTraffic reports whether p permits some of t (to any address).
func matchesTraffic(p perm, t traffic) bool {
	if t.Proto == "" || p.Proto == "-1" {
		return true
	}
	if p.Proto != t.Proto {
		return false
	}
	return t.Port == 0 || (int32(t.Port) >= p.From && int32(t.Port) <= p.To)
}

// allows reports whether some rule permits t to addr.
func allows(ps []perm, t traffic, addr netip.Addr) bool {
	for _, p := range ps {
		c, err := netip.ParsePrefix(p.CIDR)
		if err == nil && c.Contains(addr) && matchesTraffic(p, t) {
			return true
		}
	}
	return false
}

// without removes t, to every address, from the CIDR rules of ps. An
// all-traffic rule becomes TCP, UDP and ICMP rules minus t: other IP
// protocols (GRE, ESP, …) are lost, which a per-case copy can afford.
// Rules to groups and prefix lists are kept: they name peers we cannot
// split by address.
func without(ps []perm, t traffic) []perm {
	var out []perm
	for _, p := range ps {
		if p.CIDR == "" || !matchesTraffic(p, t) {
			out = append(out, p)
			continue
		}
		if t.Proto == "" {
			continue // all traffic is abused: the rule goes
		}
		if p.Proto == "-1" {
			icmp := "icmp"
			if strings.Contains(p.CIDR, ":") {
				icmp = "icmpv6"
			}
			for _, proto := range []string{"tcp", "udp"} {
				full := p
				full.Proto, full.From, full.To = proto, 0, 65535
				if proto == t.Proto {
					out = append(out, splitPort(full, t.Port)...)
				} else {
					out = append(out, full)
				}
			}
			x := p
			x.Proto, x.From, x.To = icmp, -1, -1
			out = append(out, x)
			continue
		}
		out = append(out, splitPort(p, t.Port)...)
	}
	return out
}

// splitPort is p's port range without port (all of it when port is 0).
func splitPort(p perm, port uint16) []perm {
	if port == 0 {
		return nil
	}
	var out []perm
	if int32(port) > p.From {
		lo := p
		lo.To = int32(port) - 1
		out = append(out, lo)
	}
	if int32(port) < p.To {
		hi := p
		hi.From = int32(port) + 1
		out = append(out, hi)
	}
	return out
}
