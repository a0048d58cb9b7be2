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

// actionKey is "<case>:nftables:<cidr>:<proto>:<port>", with "all" for
// every protocol.
func actionKey(caseID string, b block) string {
	proto := b.proto
	if proto == "" {
		proto = "all"
	}
	return fmt.Sprintf("%s:nftables:%s:%s:%d", caseID, b.prefix, proto, b.port)
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
	var (
		actions  []remediate.Action
		refusals []remediate.Refusal
		seen     = map[string]bool{}
		built    bool // an earlier action creates the table, chain, sets, rules
	)
	for _, t := range in.Targets {
		addr := t.IP.Unmap()
		blk, err := blockOf(netip.PrefixFrom(addr, addr.BitLen()), strings.ToLower(t.Protocol), t.Port)
		if err != nil {
			refusals = append(refusals, remediate.Refusal{What: t.String(), Reason: err.Error()})
			continue
		}
		key := actionKey(in.CaseID, blk)
		if seen[key] {
			continue
		}
		if len(key) > maxComment {
			refusals = append(refusals, remediate.Refusal{What: key, Reason: fmt.Sprintf("the key is longer than an nft comment (%d bytes)", maxComment)})
			continue
		}
		seen[key] = true
		o, err := diff(rs, blk)
		if err != nil {
			refusals = append(refusals, remediate.Refusal{What: key, Reason: err.Error()})
			continue
		}
		if built {
			o = ops{elems: o.elems}
		}
		built = true
		reason := fmt.Sprintf("%s: reject %s from this host in table inet %s", in.Type, blk.describe(), b.table)
		if len(o.elems) == 0 {
			reason += " (already blocked)"
		}
		actions = append(actions, remediate.Action{
			Key:      key,
			Kind:     remediate.KindNftables,
			Reason:   reason,
			Resource: "host",
			Target:   blk.prefix,
			Protocol: blk.proto,
			Port:     blk.port,
			Calls:    o.calls(b.table, blk, in.Policy.BlockTTL, key),
		})
	}
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
