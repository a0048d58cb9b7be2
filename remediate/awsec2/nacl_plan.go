package awsec2

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// defaultNACLQuota is AWS's default entries per ACL, direction and family.
const defaultNACLQuota = 20

// networkACL is an ACL and the instance that led us to it.
type networkACL struct {
	ID       string
	Subnet   string
	Instance instance
	Entries  []aclEntry
}

// want is one block to place: traffic to Prefix, all of it when Proto is
// "", else Proto on Port (every port when Port is 0). What names the
// targets it covers, for refusals and reasons.
type want struct {
	Prefix netip.Prefix
	Proto  string
	Port   uint16
	What   []string
}

func (w want) String() string { return strings.Join(w.What, ", ") }

// planNACL plans one egress deny per target in the network ACL of every
// subnet the instances sit in.
func (b *Backend) planNACL(ctx context.Context, in remediate.Input, insts []instance) ([]remediate.Action, []remediate.Refusal, error) {
	wants, refusals := wantsOf(in)
	band := in.Policy.RuleBand
	if band[0] < 1 || band[1] > 32766 || band[0] > band[1] {
		for _, w := range wants {
			refusals = append(refusals, remediate.Refusal{What: w.String(), Reason: fmt.Sprintf("the NACL rule band %v is not within 1..32766", band)})
		}
		return nil, refusals, nil
	}
	var acls []networkACL
	for _, inst := range insts {
		for _, subnet := range inst.subnets() {
			acl, err := b.aclForSubnet(ctx, subnet, inst)
			if err != nil {
				return nil, nil, err
			}
			if !slices.ContainsFunc(acls, func(a networkACL) bool { return a.ID == acl.ID }) {
				acls = append(acls, acl)
			}
		}
	}
	var actions []remediate.Action
	for _, acl := range acls {
		as, rs := planACL(in, acl, wants)
		actions, refusals = append(actions, as...), append(refusals, rs...)
	}
	return actions, refusals, nil
}

// wantsOf turns the targets into blocks, each once. A target without a
// protocol blocks all traffic to the address, which makes port-specific
// targets at the same address redundant.
func wantsOf(in remediate.Input) ([]want, []remediate.Refusal) {
	var wants []want
	var refusals []remediate.Refusal
	for _, t := range in.Targets {
		ip := t.IP.Unmap()
		if !ip.IsValid() {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: "no valid address"})
			continue
		}
		p := netip.PrefixFrom(ip, ip.BitLen())
		if slices.ContainsFunc(in.Policy.Allowlist, func(a netip.Prefix) bool { return a.Overlaps(p) }) {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: "on the allowlist"})
			continue
		}
		if _, err := protoNumber(t.Protocol); err != nil {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: err.Error()})
			continue
		}
		w := want{Prefix: p, Proto: t.Protocol, Port: t.Port, What: []string{t.String()}}
		if w.Proto == "" {
			w.Port = 0
		}
		if i := slices.IndexFunc(wants, func(o want) bool { return o.Prefix == w.Prefix && o.Proto == w.Proto && o.Port == w.Port }); i >= 0 {
			wants[i].What = append(wants[i].What, w.What...)
			continue
		}
		wants = append(wants, w)
	}
	// Drop what an all-traffic block to the same address already covers.
	return slices.DeleteFunc(wants, func(w want) bool {
		return w.Proto != "" && slices.ContainsFunc(wants, func(o want) bool { return o.Proto == "" && o.Prefix == w.Prefix })
	}), refusals
}

// aclForSubnet finds the ACL associated with the subnet, else the VPC's
// default ACL (which serves every subnet without an association).
func (b *Backend) aclForSubnet(ctx context.Context, subnet string, inst instance) (networkACL, error) {
	out, err := b.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{
		Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{subnet}}},
	})
	if err != nil {
		return networkACL{}, wrap(err, "describe network ACL of %s", subnet)
	}
	if len(out.NetworkAcls) == 0 {
		out, err = b.ec2.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{inst.VPCID}},
			{Name: aws.String("default"), Values: []string{"true"}},
		}})
		if err != nil {
			return networkACL{}, wrap(err, "describe default network ACL of %s", inst.VPCID)
		}
	}
	if len(out.NetworkAcls) == 0 {
		return networkACL{}, permanentf("no network ACL for %s in %s", subnet, inst.VPCID)
	}
	acl := out.NetworkAcls[0]
	return networkACL{ID: aws.ToString(acl.NetworkAclId), Subnet: subnet, Instance: inst, Entries: entriesOf(acl)}, nil
}

func entriesOf(acl types.NetworkAcl) []aclEntry {
	var out []aclEntry
	for _, e := range acl.Entries {
		out = append(out, fromSDKEntry(e))
	}
	return out
}

// planACL places wants in one ACL. An identical deny that already holds
// is planned again with its number, so a plan made after Apply equals
// the plan before it. When the new entries would exceed the quota, the
// targets are merged into exact CIDRs; what still does not fit is
// refused, never dropped.
func planACL(in remediate.Input, acl networkACL, wants []want) ([]remediate.Action, []remediate.Refusal) {
	quota := in.Policy.NACLQuota
	if quota <= 0 {
		quota = defaultNACLQuota
	}
	band := in.Policy.RuleBand
	taken := map[int32]bool{}
	var actions []remediate.Action
	var refusals []remediate.Refusal
	place := func(w want, n int32, reason string) {
		taken[n] = true
		actions = append(actions, naclAction(in, acl, w, n, reason))
	}
	// reuse plans the wants whose deny is there already; it returns the rest.
	reuse := func(ws []want, merged string) []want {
		var fresh []want
		for _, w := range ws {
			e, _ := denyEntry(w.Prefix, w.Proto, w.Port)
			if n, ok := existingDeny(band, acl.Entries, e); ok && !taken[n] {
				extra := merged
				if w.Prefix.IsSingleIP() {
					extra = ""
				}
				place(w, n, extra)
				continue
			}
			fresh = append(fresh, w)
		}
		return fresh
	}
	fresh := reuse(wants, "")
	for _, v6 := range []bool{false, true} {
		fam := slices.DeleteFunc(slices.Clone(fresh), func(w want) bool { return w.Prefix.Addr().Is6() != v6 })
		room := quota - countEntries(acl.Entries, true, v6)
		family := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		merged := ""
		if len(fam) > room {
			merged = fmt.Sprintf("; merged because %s has room for %d more %s egress entries (quota %d), covering only the notice's addresses, within one /%d",
				acl.ID, max(room, 0), family, quota, mergeLimit(v6))
			fam = reuse(mergeWants(fam), merged)
		}
		used := 0
		for _, w := range fam {
			e, _ := denyEntry(w.Prefix, w.Proto, w.Port)
			if used >= room {
				refusals = append(refusals, remediate.Refusal{What: w.String(), Reason: fmt.Sprintf(
					"quota full: %s holds %d of %d %s egress entries; block it with nftables or security-group",
					acl.ID, countEntries(acl.Entries, true, v6)+used, quota, family)})
				continue
			}
			n, ok := freeNumber(band[0], band, acl.Entries, e, taken)
			if !ok {
				refusals = append(refusals, remediate.Refusal{What: w.String(), Reason: fmt.Sprintf(
					"no free rule number in the band %d-%d of %s before its first allow entry that matches this traffic (rule %d): a deny numbered after it would never take effect",
					band[0], band[1], acl.ID, firstAllow(acl.Entries, e))})
				continue
			}
			used++
			extra := ""
			if !w.Prefix.IsSingleIP() {
				extra = merged
			}
			place(w, n, extra)
		}
	}
	return actions, refusals
}

// mergeWants merges the wants of each protocol and port with aggregate.
func mergeWants(ws []want) []want {
	type group struct {
		proto string
		port  uint16
	}
	var order []group
	byGroup := map[group][]want{}
	for _, w := range ws {
		g := group{w.Proto, w.Port}
		if _, seen := byGroup[g]; !seen {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], w)
	}
	var out []want
	for _, g := range order {
		var prefixes []netip.Prefix
		for _, w := range byGroup[g] {
			prefixes = append(prefixes, w.Prefix)
		}
		for _, p := range aggregate(prefixes) {
			m := want{Prefix: p, Proto: g.proto, Port: g.port}
			for _, w := range byGroup[g] {
				if p.Contains(w.Prefix.Addr()) {
					m.What = append(m.What, w.What...)
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// naclAction is the action that denies w in acl with rule number n.
func naclAction(in remediate.Input, acl networkACL, w want, n int32, extra string) remediate.Action {
	e, _ := denyEntry(w.Prefix, w.Proto, w.Port)
	e.Number = n
	ref := refOf(in, acl.Instance.ID)
	proto := w.Proto
	if proto == "" {
		proto = "all"
	}
	return remediate.Action{
		Key:  fmt.Sprintf("%s:nacl:%s:%s:%s:%d", in.CaseID, acl.ID, w.Prefix, proto, w.Port),
		Kind: remediate.KindNACL,
		Reason: fmt.Sprintf("deny %s from %s (network ACL %s) to %s: rule %d, inside the band and before the first allow that matches (rule %d)%s",
			describeTraffic(w.Proto, w.Port), acl.Subnet, acl.ID, w, n, firstAllow(acl.Entries, e), extra),
		InstanceID: ref.ID, Region: ref.Region, Account: ref.Account,
		Resource: acl.ID,
		Target:   w.Prefix, Protocol: w.Proto, Port: w.Port,
		RuleNumber: n,
		Calls:      []string{createEntryCall(acl.ID, e)},
	}
}

func describeTraffic(proto string, port uint16) string {
	switch {
	case proto == "":
		return "all traffic"
	case port == 0:
		return "all " + proto
	}
	return fmt.Sprintf("%s port %d", proto, port)
}

// refOf finds the InstanceRef of id in the input.
func refOf(in remediate.Input, id string) remediate.InstanceRef {
	for _, r := range in.Instances {
		if r.ID == id {
			return r
		}
	}
	return remediate.InstanceRef{ID: id}
}
