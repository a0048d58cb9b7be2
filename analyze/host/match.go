package host

import (
	"bytes"
	"net/netip"
	"strings"
)

// addrNeedle is a target address as it appears in text. A match counts only
// when the bytes around it cannot continue the address, so that 203.0.113.8
// does not match 203.0.113.88 or 1.203.0.113.8.
type addrNeedle struct {
	addr netip.Addr
	text []byte
	v6   bool
}

// addrNeedles turns targets into needles. An IPv6 target is searched in its
// canonical and its expanded form; an IPv4-mapped one as plain IPv4.
func addrNeedles(targets []netip.Addr) []addrNeedle {
	var ns []addrNeedle
	seen := map[string]bool{}
	push := func(a netip.Addr, s string) {
		if !seen[s] {
			seen[s] = true
			ns = append(ns, addrNeedle{addr: a, text: []byte(s), v6: a.Is6()})
		}
	}
	for _, a := range targets {
		a = a.Unmap().WithZone("")
		if !a.IsValid() {
			continue
		}
		push(a, a.String())
		if a.Is6() {
			push(a, a.StringExpanded())
		}
	}
	return ns
}

// hostNeedles lower-cases the target host names and drops a trailing dot.
func hostNeedles(hosts []string) [][]byte {
	var ns [][]byte
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h != "" {
			ns = append(ns, []byte(h))
		}
	}
	return ns
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isAlnum(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// bounded reports whether the needle found at b[i:] stands alone.
func (n addrNeedle) bounded(b []byte, i int) bool {
	j := i + len(n.text)
	if n.v6 {
		if i > 0 && (isHex(b[i-1]) || b[i-1] == ':') {
			return false
		}
		return j >= len(b) || !(isHex(b[j]) || b[j] == ':')
	}
	if i > 0 && (isDigit(b[i-1]) || b[i-1] == '.' && i > 1 && isDigit(b[i-2])) {
		return false
	}
	return j >= len(b) || !(isDigit(b[j]) || b[j] == '.' && j+1 < len(b) && isDigit(b[j+1]))
}

// index returns the offset of the first stand-alone match in b, or -1.
func (n addrNeedle) index(b []byte) int {
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], n.text)
		if i < 0 {
			return -1
		}
		i += off
		if n.bounded(b, i) {
			return i
		}
		off = i + 1
	}
	return -1
}

// hostIndex returns the offset of the first stand-alone match of the host
// name h in the lower-cased text b, or -1. www.shop.example.org is another
// host than shop.example.org, so a leading label does not count either.
func hostIndex(b, h []byte) int {
	part := func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], h)
		if i < 0 {
			return -1
		}
		i += off
		j := i + len(h)
		before := i == 0 || !(part(b[i-1]) || b[i-1] == '.')
		after := j >= len(b) || !(part(b[j]) || b[j] == '.' && j+1 < len(b) && isAlnum(b[j+1]))
		if before && after {
			return i
		}
		off = i + 1
	}
	return -1
}

// lineAt returns the number (from 1) of the line holding offset i of b.
func lineAt(b []byte, i int) int {
	return bytes.Count(b[:i], []byte{'\n'}) + 1
}

// lineAround returns the line of b that holds offset i, without its '\n'.
func lineAround(b []byte, i int) []byte {
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	end := bytes.IndexByte(b[i:], '\n')
	if end < 0 {
		return b[start:]
	}
	return b[start : i+end]
}

// lowerASCII writes the ASCII lower case of b into buf, reusing its space.
func lowerASCII(buf, b []byte) []byte {
	buf = append(buf[:0], b...)
	for i, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return buf
}
