package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
)

// block is what one action blocks.
type block struct {
	prefix netip.Prefix // masked
	proto  string       // "tcp", "udp" or "" for every protocol
	port   uint16       // 0 for every port
}

// sets are the sets that hold the block: the protocol's set, tcp and udp
// for a port without a protocol (only they have ports), or the
// all-protocol set.
func (b block) sets() []setSpec {
	fam := familyV4
	if b.prefix.Addr().Is6() {
		fam = familyV6
	}
	switch {
	case b.proto != "":
		return []setSpec{{fam, b.proto}}
	case b.port != 0:
		return []setSpec{{fam, "tcp"}, {fam, "udp"}}
	default:
		return []setSpec{{fam, ""}}
	}
}

// span is a box in a set's key space: addresses from first to last and,
// in a concatenated set, ports from portLo to portHi.
type span struct {
	first, last    netip.Addr
	portLo, portHi uint16
}

// spanOf is b's span in set s.
func (b block) spanOf(s setSpec) span {
	sp := span{first: b.prefix.Addr(), last: lastAddr(b.prefix)}
	if s.concat() {
		sp.portLo, sp.portHi = b.port, b.port
		if b.port == 0 {
			sp.portHi = 65535
		}
	}
	return sp
}

// contains reports whether o lies inside sp.
func (sp span) contains(o span) bool {
	return sp.first.Compare(o.first) <= 0 && o.last.Compare(sp.last) <= 0 &&
		sp.portLo <= o.portLo && o.portHi <= sp.portHi
}

// overlaps reports whether sp and o share a key.
func (sp span) overlaps(o span) bool {
	return sp.first.Compare(o.last) <= 0 && o.first.Compare(sp.last) <= 0 &&
		sp.portLo <= o.portHi && o.portLo <= sp.portHi
}

// text is the element as nft writes it: "203.0.113.5",
// "203.0.113.0/24 . 22", "2001:db8::7 . 0-65535".
func (sp span) text(s setSpec) string {
	addr := sp.first.String()
	if sp.first != sp.last {
		addr = rangeText(sp.first, sp.last)
	}
	if !s.concat() {
		return addr
	}
	if sp.portLo == sp.portHi {
		return fmt.Sprintf("%s . %d", addr, sp.portLo)
	}
	return fmt.Sprintf("%s . %d-%d", addr, sp.portLo, sp.portHi)
}

// rangeText writes an address range as a prefix when it is one.
func rangeText(first, last netip.Addr) string {
	for bits := 0; bits <= first.BitLen(); bits++ {
		p := netip.PrefixFrom(first, bits)
		if p.Masked() == p && lastAddr(p) == last {
			return p.String()
		}
	}
	return first.String() + "-" + last.String()
}

// elementText is an element with its timeout and comment, as in
// "add element inet T S { 203.0.113.5 . 22 timeout 168h comment "key" }".
func elementText(table string, s setSpec, sp span, ttl time.Duration, comment string) string {
	e := sp.text(s)
	if ttl > 0 {
		e += " timeout " + durationText(ttl)
	}
	return fmt.Sprintf("add element inet %s %s { %s comment %q }", table, s.name(), e, comment)
}

// durationText writes d the way nft reads it: "168h", "1h30m", "90s",
// "1500ms"; nft keeps milliseconds.
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

// elements encodes sp for set s. A concatenated set (pipapo) takes a
// start and an end key in one element; a plain interval set (rbtree)
// takes a start element and an end element flagged as such, at the
// address after the last, unless the range reaches the top.
func (sp span) elements(s setSpec, ttl time.Duration, comment string) []nftables.SetElement {
	if s.concat() {
		return []nftables.SetElement{{
			Key:     concatKey(sp.first, sp.portLo),
			KeyEnd:  concatKey(sp.last, sp.portHi),
			Timeout: ttl,
			Comment: comment,
		}}
	}
	els := []nftables.SetElement{{Key: sp.first.AsSlice(), Timeout: ttl, Comment: comment}}
	if next := sp.last.Next(); next.IsValid() {
		// The end carries no timeout: the kernel refuses one there, and
		// expires the end with its start.
		els = append(els, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
	}
	return els
}

// concatKey is address . port, the port padded to a 32-bit register.
func concatKey(a netip.Addr, port uint16) []byte {
	k := a.AsSlice()
	k = binary.BigEndian.AppendUint16(k, port)
	return append(k, 0, 0)
}

// found is an element read back from a set.
type found struct {
	span    span
	comment string
	expires time.Duration // 0 when it does not time out
}

// decodeElements turns the elements of set s into spans. A plain
// interval set lists start and end elements separately; each start
// ends at the lowest end element above it, since intervals in a set do
// not overlap.
func decodeElements(s setSpec, els []nftables.SetElement) []found {
	var out []found
	if s.concat() {
		n := int(s.fam.addrLen)
		for _, e := range els {
			if len(e.Key) != n+4 || len(e.KeyEnd) != n+4 {
				continue
			}
			first, _ := netip.AddrFromSlice(e.Key[:n])
			last, _ := netip.AddrFromSlice(e.KeyEnd[:n])
			out = append(out, found{
				span:    span{first: first, last: last, portLo: binary.BigEndian.Uint16(e.Key[n:]), portHi: binary.BigEndian.Uint16(e.KeyEnd[n:])},
				comment: e.Comment,
				expires: e.Expires,
			})
		}
		return out
	}
	var ends []netip.Addr
	for _, e := range els {
		if a, ok := netip.AddrFromSlice(e.Key); ok && e.IntervalEnd {
			ends = append(ends, a)
		}
	}
	slices.SortFunc(ends, netip.Addr.Compare)
	for _, e := range els {
		first, ok := netip.AddrFromSlice(e.Key)
		if !ok || e.IntervalEnd {
			continue
		}
		last := maxAddr(first)
		if next := first.Next(); next.IsValid() {
			if i, _ := slices.BinarySearchFunc(ends, next, netip.Addr.Compare); i < len(ends) {
				last = ends[i].Prev()
			}
		}
		out = append(out, found{span: span{first: first, last: last}, comment: e.Comment, expires: e.Expires})
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// maxAddr is 255.255.255.255 or ffff:...:ffff, in a's family.
func maxAddr(a netip.Addr) netip.Addr {
	return lastAddr(netip.PrefixFrom(a, 0))
}
