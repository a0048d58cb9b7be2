package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/remediate"
)

// The widest blocks we accept. The caller has checked the targets; this
// is a second guard against blocking a whole provider by mistake.
const (
	maxBitsV4 = 24
	maxBitsV6 = 48
)

// maxComment is the longest comment the nft CLI accepts; the key is the
// element's comment.
const maxComment = 128

// blockOf validates a target, protocol and port and returns the block.
func blockOf(target netip.Prefix, proto string, port uint16) (block, error) {
	if !target.IsValid() {
		return block{}, errors.New("not an IP address or prefix")
	}
	if target.Addr().Is4In6() {
		bits := target.Bits() - 96
		if bits < 0 {
			return block{}, fmt.Errorf("%s: an IPv4-mapped prefix wider than ::ffff:0:0/96", target)
		}
		target = netip.PrefixFrom(target.Addr().Unmap(), bits)
	}
	p := target.Masked()
	minBits := maxBitsV4
	if p.Addr().Is6() {
		minBits = maxBitsV6
	}
	switch {
	case p.Bits() == 0:
		return block{}, fmt.Errorf("%s would block every address", p)
	case p.Addr().IsUnspecified() && p.IsSingleIP():
		return block{}, fmt.Errorf("%s is the unspecified address", p.Addr())
	case !p.IsSingleIP() && p.Bits() < minBits:
		return block{}, fmt.Errorf("%s is wider than /%d", p, minBits)
	case p != target:
		return block{}, fmt.Errorf("%s has host bits set (%s)", target, p)
	}
	switch proto {
	case "tcp", "udp", "":
	default:
		return block{}, fmt.Errorf("protocol %q: nftables blocks only tcp, udp, or every protocol", proto)
	}
	return block{prefix: p, proto: proto, port: port}, nil
}

// Block is one target the nftables backend can block: an address, a
// protocol ("tcp", "udp", or "" for all) and a port (0 for all).
type Block struct{ b block }

// Describe writes the block as people read it: "203.0.113.5 port 22/tcp".
func (b Block) Describe() string { return b.b.describe() }

// Calls are the nft commands that block b in table, with its timeout
// and the key as comment. With withLayout they first create the table, the
// chain, the sets and the rules, as on a host without our table.
func (b Block) Calls(table string, withLayout bool, ttl time.Duration, key string) []string {
	o := ops{elems: b.b.sets()}
	if withLayout {
		o.table, o.chain, o.sets, o.rules = true, true, layout, true
	}
	return o.calls(table, b.b, ttl, key)
}

// PlanTargets is the part of a plan that needs no nftables: it checks
// in.Targets and makes one action per distinct key, in order. keyOf
// writes the key around "<cidr>:<proto>:<port>" (proto "all" for every
// protocol); action fills the rest of the action (Reason, Resource,
// Calls, the instance) for blk, first when no action comes before it,
// and PlanTargets sets Key, Kind, Target, Protocol and Port. A target
// nftables cannot block, a key longer than an nft comment, or an error
// from action is a Refusal.
func PlanTargets(in remediate.Input, keyOf func(tail string) string,
	action func(blk Block, key string, first bool) (remediate.Action, error)) ([]remediate.Action, []remediate.Refusal) {
	var (
		actions  []remediate.Action
		refusals []remediate.Refusal
		seen     = map[string]bool{}
	)
	for _, t := range in.Targets {
		addr := t.IP.Unmap()
		blk, err := blockOf(netip.PrefixFrom(addr, addr.BitLen()), strings.ToLower(t.Protocol), t.Port)
		if err != nil {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: err.Error()})
			continue
		}
		key := keyOf(keyTail(blk))
		if seen[key] {
			continue
		}
		if len(key) > maxComment {
			refusals = append(refusals, remediate.Refusal{What: key, Reason: fmt.Sprintf("the key is longer than an nft comment (%d bytes)", maxComment)})
			continue
		}
		seen[key] = true
		a, err := action(Block{blk}, key, len(actions) == 0)
		if err != nil {
			refusals = append(refusals, remediate.Refusal{What: key, Reason: err.Error()})
			continue
		}
		a.Key, a.Kind = key, remediate.KindNftables
		a.Target, a.Protocol, a.Port = blk.prefix, blk.proto, blk.port
		actions = append(actions, a)
	}
	return actions, refusals
}

// keyTail is "<cidr>:<proto>:<port>", with "all" for every protocol: the
// end of an action's key.
func keyTail(b block) string {
	proto := b.proto
	if proto == "" {
		proto = "all"
	}
	return fmt.Sprintf("%s:%s:%d", b.prefix, proto, b.port)
}

// describe writes the block as people read it.
func (b block) describe() string {
	s := b.prefix.String()
	if b.prefix.IsSingleIP() {
		s = b.prefix.Addr().String()
	}
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

// Plan proposes one action per distinct target when remediate.KindNftables
// is among in.Policy.Kinds, and none otherwise. It reads our table, so
// that the calls say what Apply would create, and changes nothing. A
// target it must not block is a Refusal.
func (b *Backend) Plan(ctx context.Context, in remediate.Input) ([]remediate.Action, []remediate.Refusal, error) {
	if !slices.Contains(in.Policy.Kinds, remediate.KindNftables) {
		return nil, nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("nft: plan: %w", err)
	}
	c, err := b.conn()
	if err != nil {
		return nil, nil, err
	}
	rs, err := read(c, b.table)
	if err != nil {
		return nil, nil, err
	}
	actions, refusals := PlanTargets(in, func(tail string) string { return in.CaseID + ":nftables:" + tail },
		func(blk Block, key string, first bool) (remediate.Action, error) {
			o, err := diff(rs, blk.b)
			if err != nil {
				return remediate.Action{}, err
			}
			if !first { // an earlier action creates the table, chain, sets, rules
				o = ops{elems: o.elems}
			}
			reason := fmt.Sprintf("%s: reject %s from this host in table inet %s", in.Type, blk.Describe(), b.table)
			if len(o.elems) == 0 {
				reason += " (already blocked)"
			}
			return remediate.Action{Reason: reason, Resource: "host", Calls: o.calls(b.table, blk.b, in.Policy.BlockTTL, key)}, nil
		})
	return actions, refusals, nil
}

// ttlOf is the element timeout that a's calls carry, 0 for none. Action
// has no field for it; Plan writes it into the "add element" calls,
// which are what Apply is to do.
func ttlOf(a remediate.Action) (time.Duration, error) {
	for _, call := range a.Calls {
		if !strings.HasPrefix(call, "add element ") {
			continue
		}
		f := strings.Fields(call)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "timeout" {
				continue
			}
			d, err := time.ParseDuration(f[i+1])
			if err != nil {
				return 0, fmt.Errorf("nft: timeout in %q: %w", call, err)
			}
			return d, nil
		}
		return 0, nil
	}
	return 0, nil
}
