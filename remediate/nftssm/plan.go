package nftssm

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
)

// Plan proposes, when remediate.KindNftables is among in.Policy.Kinds,
// one action per instance and distinct target: the host backend's block,
// made on the instance. An instance carrying in.Policy.ProtectTag stops
// the plan, as with the EC2 kinds; a target nftables cannot block, or an
// instance in an account we may not act in, is a Refusal.
//
// Plan does not ask the instances (a Run Command per target would make a
// plan take seconds and need the agent up): the calls are what Apply
// makes on an instance without our table, and Apply leaves out what is
// there already. A dry run asks the instance and returns the exact calls.
func (b *Backend) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	if !slices.Contains(in.Policy.Kinds, remediate.KindNftables) {
		return nil, nil, nil
	}
	var (
		actions  []remediate.Action
		refusals []remediate.Refusal
	)
	if len(in.Instances) == 0 && len(in.Targets) > 0 {
		refusals = append(refusals, remediate.Refusal{What: string(remediate.KindNftables),
			Reason: "nftables on the instance: the notice names no instance of ours"})
	}
	for _, ref := range in.Instances {
		if !instanceIDRE.MatchString(ref.ID) {
			refusals = append(refusals, remediate.Refusal{What: ref.ID, Reason: "not an EC2 instance ID"})
			continue
		}
		if _, err := b.place(ref.Account, ref.Region); err != nil {
			refusals = append(refusals, remediate.Refusal{What: ref.ID, Reason: err.Error()})
			continue
		}
		if tag := in.Policy.ProtectTag; tag != "" {
			protected, err := b.protected(ctx, ref, tag)
			if err != nil {
				return nil, nil, err
			}
			if protected {
				return nil, []remediate.Refusal{{What: ref.ID, Stop: true,
					Reason: fmt.Sprintf("instance %s carries the protect tag %q: nothing is changed automatically, a human decides", ref.ID, tag)}}, nil
			}
		}
		as, rs := planInstance(in, ref)
		actions, refusals = append(actions, as...), append(refusals, rs...)
	}
	return actions, refusals, nil
}

// protected reports whether the instance carries the tag key.
func (b *Backend) protected(ctx context.Context, ref remediate.InstanceRef, tag string) (bool, error) {
	c, err := b.get(ctx, ref.Account, ref.Region)
	if err != nil {
		return false, err
	}
	out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{ref.ID}})
	if err != nil {
		return false, classify(fmt.Errorf("nftssm: describe instance %s: %w", ref.ID, err))
	}
	for _, r := range out.Reservations {
		for _, inst := range r.Instances {
			for _, t := range inst.Tags {
				if t.Key != nil && *t.Key == tag {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// planInstance is the host backend's plan for one instance, offline.
func planInstance(in remediate.Input, ref remediate.InstanceRef) ([]remediate.Action, []remediate.Refusal) {
	var (
		actions  []remediate.Action
		refusals []remediate.Refusal
		seen     = map[string]bool{}
		built    bool // an earlier action creates the table, chain, sets, rules
	)
	for _, t := range in.Targets {
		addr := t.IP.Unmap()
		proto := strings.ToLower(t.Protocol)
		if why := refuse(addr, proto); why != "" {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: why})
			continue
		}
		blk := block{addr: addr, proto: proto, port: t.Port}
		key := fmt.Sprintf("%s:nftables:%s:%s:%s:%d", in.CaseID, ref.ID, netip.PrefixFrom(addr, addr.BitLen()), blk.protoWord(), blk.port)
		if seen[key] {
			continue
		}
		if len(key) > maxKeyBytes {
			refusals = append(refusals, remediate.Refusal{What: key, Reason: fmt.Sprintf("the key is longer than an nft comment (%d bytes)", maxKeyBytes)})
			continue
		}
		seen[key] = true
		var calls []string
		if !built {
			calls = layoutCalls()
			built = true
		}
		for _, s := range blk.sets() {
			calls = append(calls, blk.elementText(s, in.Policy.BlockTTL, key))
		}
		actions = append(actions, remediate.Action{
			Key:        key,
			Kind:       remediate.KindNftables,
			Reason:     fmt.Sprintf("%s: reject %s from instance %s in table inet %s", in.Type, blk.describe(), ref.ID, nft.DefaultTable),
			InstanceID: ref.ID,
			Region:     ref.Region,
			Account:    ref.Account,
			Resource:   "instance:" + ref.ID,
			Target:     netip.PrefixFrom(addr, addr.BitLen()),
			Protocol:   proto,
			Port:       t.Port,
			Calls:      calls,
		})
	}
	return actions, refusals
}

// refuse says why the host backend would refuse the target, or "".
func refuse(addr netip.Addr, proto string) string {
	switch {
	case !addr.IsValid():
		return "not an IP address or prefix"
	case addr.IsUnspecified():
		return fmt.Sprintf("%s is the unspecified address", addr)
	}
	switch proto {
	case "tcp", "udp", "":
		return ""
	}
	return fmt.Sprintf("protocol %q: nftables blocks only tcp, udp, or every protocol", proto)
}

// block is one address, protocol ("" for all) and port (0 for all).
type block struct {
	addr  netip.Addr
	proto string
	port  uint16
}

// protoWord is the protocol as the key writes it.
func (b block) protoWord() string {
	if b.proto == "" {
		return "all"
	}
	return b.proto
}

// set is one of the host backend's six sets: v4_all, v4_tcp, ... v6_udp.
type set struct {
	v6    bool
	proto string // "tcp", "udp", or "" for every protocol
}

// layout is every set, in the order of their rules in the chain.
var layout = []set{{false, ""}, {false, "tcp"}, {false, "udp"}, {true, ""}, {true, "tcp"}, {true, "udp"}}

func (s set) name() string {
	fam := "v4"
	if s.v6 {
		fam = "v6"
	}
	if s.proto == "" {
		return fam + "_all"
	}
	return fam + "_" + s.proto
}

// sets are the sets holding b: its protocol's, tcp and udp for a port
// without a protocol, else the all-protocol set.
func (b block) sets() []set {
	v6 := b.addr.Is6()
	switch {
	case b.proto != "":
		return []set{{v6, b.proto}}
	case b.port != 0:
		return []set{{v6, "tcp"}, {v6, "udp"}}
	}
	return []set{{v6, ""}}
}

// describe writes the block as people read it.
func (b block) describe() string {
	s := b.addr.String()
	switch {
	case b.port != 0 && b.proto != "":
		return fmt.Sprintf("%s port %d/%s", s, b.port, b.proto)
	case b.port != 0:
		return fmt.Sprintf("%s port %d (tcp and udp)", s, b.port)
	case b.proto != "":
		return fmt.Sprintf("%s, every %s port", s, b.proto)
	}
	return s + ", every protocol"
}

// layoutCalls are the nft commands that create the table, the chain,
// the sets and the rules, as the host backend writes them.
func layoutCalls() []string {
	t := nft.DefaultTable
	calls := []string{
		"add table inet " + t,
		fmt.Sprintf("add chain inet %s output { type filter hook output priority filter; policy accept; }", t),
	}
	for _, s := range layout {
		typ := "ipv4_addr"
		if s.v6 {
			typ = "ipv6_addr"
		}
		if s.proto != "" {
			typ += " . inet_service"
		}
		calls = append(calls, fmt.Sprintf("add set inet %s %s { type %s; flags interval,timeout; }", t, s.name(), typ))
	}
	for _, s := range layout {
		match := "ip daddr"
		if s.v6 {
			match = "ip6 daddr"
		}
		reject := "reject with icmpx admin-prohibited"
		if s.proto == "tcp" {
			reject = "reject with tcp reset"
		}
		rule := fmt.Sprintf("%s @%s counter %s", match, s.name(), reject)
		if s.proto != "" {
			rule = fmt.Sprintf("%s . %s dport @%s counter %s", match, s.proto, s.name(), reject)
		}
		calls = append(calls, fmt.Sprintf("add rule inet %s output %s", t, rule))
	}
	return calls
}

// elementText is b's element in s with its timeout and comment. The host
// backend reads the timeout back from this call on the instance.
func (b block) elementText(s set, ttl time.Duration, key string) string {
	e := b.addr.String()
	if s.proto != "" {
		if b.port != 0 {
			e += fmt.Sprintf(" . %d", b.port)
		} else {
			e += " . 0-65535"
		}
	}
	if ttl > 0 {
		e += " timeout " + durationText(ttl)
	}
	return fmt.Sprintf("add element inet %s %s { %s comment %q }", nft.DefaultTable, s.name(), e, key)
}

// durationText writes d the way nft reads it: "168h", "1h30m", "1500ms".
func durationText(d time.Duration) string {
	d = d.Round(time.Millisecond)
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	var out string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			out += fmt.Sprintf("%d%s", n, u.name)
			d -= n * u.d
		}
	}
	return out
}
