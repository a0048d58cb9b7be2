package nft

import (
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// chainName is our only chain.
const chainName = "output"

// family is one address family of the layout.
type family struct {
	prefix   string // set name prefix: "v4", "v6"
	nfproto  byte
	addrType nftables.SetDatatype
	addrLen  uint32 // bytes
	daddrOff uint32 // offset of the destination in the network header
	// portReg is the register of the port in a concatenation: the one
	// right after the address, counted in 32-bit registers (9 is
	// NFT_REG32_01, after 4 bytes in register 1; 2 is the second 128-bit
	// register, after 16 bytes). nft itself uses the same.
	portReg uint32
	match   string // "ip daddr", "ip6 daddr"
}

var (
	familyV4 = family{prefix: "v4", nfproto: unix.NFPROTO_IPV4, addrType: nftables.TypeIPAddr, addrLen: 4, daddrOff: 16, portReg: 9, match: "ip daddr"}
	familyV6 = family{prefix: "v6", nfproto: unix.NFPROTO_IPV6, addrType: nftables.TypeIP6Addr, addrLen: 16, daddrOff: 24, portReg: 2, match: "ip6 daddr"}
)

// setSpec is one of our six sets and the rule that uses it.
type setSpec struct {
	fam   family
	proto string // "tcp", "udp", or "" for every protocol
}

// layout is every set, in the order of their rules in the chain.
var layout = []setSpec{
	{familyV4, ""}, {familyV4, "tcp"}, {familyV4, "udp"},
	{familyV6, ""}, {familyV6, "tcp"}, {familyV6, "udp"},
}

// name is the set's name: v4_all, v4_tcp, v6_udp...
func (s setSpec) name() string {
	if s.proto == "" {
		return s.fam.prefix + "_all"
	}
	return s.fam.prefix + "_" + s.proto
}

// concat reports whether the set's key is address . port.
func (s setSpec) concat() bool { return s.proto != "" }

// keyType is the set's key type.
func (s setSpec) keyType() nftables.SetDatatype {
	if s.concat() {
		return nftables.MustConcatSetType(s.fam.addrType, nftables.TypeInetService)
	}
	return s.fam.addrType
}

// set is the set as the library describes it, for creation.
func (s setSpec) set(t *nftables.Table) *nftables.Set {
	return &nftables.Set{
		Table:         t,
		Name:          s.name(),
		KeyType:       s.keyType(),
		Interval:      true, // CIDRs, and port ranges for a protocol without a port
		HasTimeout:    true, // Policy.BlockTTL; an element without one never expires
		Concatenation: s.concat(),
	}
}

// setText is the nft command that creates the set.
func (s setSpec) setText(table string) string {
	return fmt.Sprintf("add set inet %s %s { type %s; flags interval,timeout; }", table, s.name(), s.keyType().Name)
}

// ruleText is the rule as nft writes it, without "add rule".
func (s setSpec) ruleText() string {
	if s.concat() {
		return fmt.Sprintf("%s . %s dport @%s counter %s", s.fam.match, s.proto, s.name(), s.rejectText())
	}
	return fmt.Sprintf("%s @%s counter %s", s.fam.match, s.name(), s.rejectText())
}

// rejectText is the rule's verdict: a TCP reset makes a connect fail at
// once with ECONNREFUSED; everything else gets an ICMP
// administratively-prohibited. A drop would make connects hang.
func (s setSpec) rejectText() string {
	if s.proto == "tcp" {
		return "reject with tcp reset"
	}
	return "reject with icmpx admin-prohibited"
}

// ruleExprs is the rule's bytecode, the same as nft generates for
// ruleText.
func (s setSpec) ruleExprs(set *nftables.Set) []expr.Any {
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{s.fam.nfproto}},
	}
	if s.concat() {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{protoNumber(s.proto)}},
		)
	}
	e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: s.fam.daddrOff, Len: s.fam.addrLen})
	if s.concat() {
		e = append(e, &expr.Payload{DestRegister: s.fam.portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	}
	e = append(e, &expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID}, &expr.Counter{})
	if s.proto == "tcp" {
		return append(e, &expr.Reject{Type: unix.NFT_REJECT_TCP_RST})
	}
	return append(e, &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED})
}

// protoNumber is the IP protocol number of "tcp" or "udp".
func protoNumber(proto string) byte {
	if proto == "udp" {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// fingerprint describes a rule's expressions without what changes on
// its own (counter values, set IDs), so that a rule read back can be
// compared with the one we would write.
func fingerprint(exprs []expr.Any) string {
	var b strings.Builder
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Meta:
			fmt.Fprintf(&b, "meta(%d,%d,%t) ", e.Key, e.Register, e.SourceRegister)
		case *expr.Cmp:
			fmt.Fprintf(&b, "cmp(%d,%d,%x) ", e.Op, e.Register, e.Data)
		case *expr.Payload:
			fmt.Fprintf(&b, "payload(%d,%d,%d,%d,%d) ", e.OperationType, e.DestRegister, e.Base, e.Offset, e.Len)
		case *expr.Lookup:
			fmt.Fprintf(&b, "lookup(%d,%s,%t) ", e.SourceRegister, e.SetName, e.Invert)
		case *expr.Counter:
			b.WriteString("counter ")
		case *expr.Reject:
			fmt.Fprintf(&b, "reject(%d,%d) ", e.Type, e.Code)
		default:
			fmt.Fprintf(&b, "%T ", e)
		}
	}
	return b.String()
}

// tableText, chainText: the nft commands that create the table and chain.
func tableText(table string) string { return "add table inet " + table }

func chainText(table string) string {
	return fmt.Sprintf("add chain inet %s %s { type filter hook output priority filter; policy accept; }", table, chainName)
}

// chainSpec is our chain as the library describes it.
func chainSpec(t *nftables.Table) *nftables.Chain {
	policy := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name:     chainName,
		Table:    t,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookOutput,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &policy,
	}
}
