// Package ipscan finds IP addresses and host names in untrusted report
// text. It tells a whole address from a masked one (198.51.100.x,
// 203.0.113.*, 198.51.100.■), from part of a longer token and from a CIDR
// range, and writes IPv6 in canonical form. The notice parser and the
// evidence parser share it so that both agree on what is an address.
package ipscan

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// reCandidate finds things that may be addresses; Hits then checks
// their surroundings, since a regexp cannot tell 198.51.100.1 from the
// masked 198.51.100.1* or the range 198.51.100.0/24.
var reCandidate = regexp.MustCompile(`\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}\]?(?::\d{1,5})?|\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?`)

// Hit is one well-formed, unmasked address in a line: the address
// (IPv4-mapped IPv6 unmapped), the port written right after it (":443",
// "]:443") or -1, and the byte offsets of the whole token in the line.
type Hit struct {
	Addr       netip.Addr
	Port       int
	Start, End int
}

// Hits returns the addresses in line that are whole: not part of a longer
// token, not masked, not a CIDR range.
func Hits(line string) []Hit {
	if !MayHold(line) {
		return nil
	}
	var out []Hit
	for i := 0; i < len(line); {
		if !isIPByte(line[i]) {
			i++
			continue
		}
		j := i
		for j < len(line) && isIPByte(line[j]) {
			j++
		}
		out = runHits(out, line, i, j)
		i = j
	}
	return out
}

// isIPByte reports the bytes an address with a port can be made of.
func isIPByte(c byte) bool { return isHex(c) || c == '.' || c == ':' || c == '[' || c == ']' }

// runHits checks one run of address bytes line[i:j]. Most runs are a whole
// address or none; a run such as "ed:198.51.100.1" (the tail of "banned:")
// falls back to the regexp to find the address inside.
func runHits(out []Hit, line string, i, j int) []Hit {
	run := line[i:j]
	dots := strings.Count(run, ".")
	if dots < 3 && strings.Count(run, ":") < 2 {
		return out
	}
	e := j
	for e > i && line[e-1] == '.' {
		e-- // a full stop after the address
	}
	if dots >= 3 && e > i && line[e-1] == ':' {
		e--
	}
	if h, ok := checkHit(line, i, e); ok {
		return append(out, h)
	}
	if dots == 0 {
		return out
	}
	for _, loc := range reCandidate.FindAllStringIndex(run, -1) {
		if h, ok := checkHit(line, i+loc[0], i+loc[1]); ok {
			out = append(out, h)
		}
	}
	return out
}

func checkHit(line string, start, end int) (Hit, bool) {
	tok := line[start:end]
	port := -1
	var host string
	switch {
	case strings.HasPrefix(tok, "["):
		i := strings.IndexByte(tok, ']')
		if i < 0 {
			return Hit{}, false
		}
		host = tok[1:i]
		if rest := tok[i+1:]; strings.HasPrefix(rest, ":") {
			port, _ = strconv.Atoi(rest[1:])
		}
	case strings.Count(tok, ":") == 1 && strings.Count(tok, ".") == 3:
		i := strings.IndexByte(tok, ':')
		host = tok[:i]
		port, _ = strconv.Atoi(tok[i+1:])
	default:
		host = strings.TrimSuffix(tok, "]")
	}
	a, ok := ParseAddr(host)
	if !ok {
		return Hit{}, false
	}
	if start > 0 {
		c := line[start-1]
		if isWordByte(c) || c == '.' || c == '*' || (c == ':' && a.Is6()) || c == '/' || strings.HasPrefix(line[:start], "■") {
			return Hit{}, false
		}
	}
	if end < len(line) {
		c := line[end]
		rest := line[end:]
		switch {
		case isWordByte(c) || c == '*' || strings.HasPrefix(rest, "■") || (c == ':' && port < 0):
			return Hit{}, false
		case c == '.' && end+1 < len(line) && (isWordByte(line[end+1]) || line[end+1] == '*'):
			return Hit{}, false
		case c == '/' && end+1 < len(line) && line[end+1] >= '0' && line[end+1] <= '9':
			return Hit{}, false // a CIDR range, never one target
		}
	}
	if port > 65535 || port == 0 {
		port = -1
	}
	return Hit{Addr: a, Port: port, Start: start, End: end}, true
}

// MayHold is a cheap test that rules out most lines before the regexp:
// an IPv4 address has "d.d", an IPv6 one has "x:" followed by a hex digit or ':'.
func MayHold(s string) bool {
	for i := 1; i+1 < len(s); i++ {
		switch s[i] {
		case '.':
			if isDigit(s[i-1]) && isDigit(s[i+1]) {
				return true
			}
		case ':':
			if isHex(s[i-1]) && (isHex(s[i+1]) || s[i+1] == ':') {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// ParseAddr accepts a literal IPv4 or IPv6 address (no zone), returning it
// unmapped so that ::ffff:198.51.100.1 and 198.51.100.1 are one address.
func ParseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	if a.Is4() && strings.Count(s, ".") != 3 {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Window is the longest text an address with a port can take: a bracketed
// IPv6 address with an embedded IPv4 tail and a port. Rules that look for an
// address right after a label read this much, never the rest of the line,
// so a hostile line with a million labels costs linear time.
const Window = 56

// At returns the address that starts at line[i], if one does. It reads at
// most the run of address bytes from i, so callers may call it once per
// label on a long line and stay linear.
func At(line string, i int) (Hit, bool) {
	end := min(len(line), i+Window)
	// Extend to the end of the run of address bytes so that a longer token
	// is not mistaken for an address cut at the window's edge.
	for end < len(line) && isIPByte(line[end]) {
		end++
	}
	if end-i > 2*Window {
		return Hit{}, false
	}
	end = min(len(line), end+1) // the byte after, for checkHit's masking test
	h, ok := First(line[i:end])
	if !ok || h.Start != 0 {
		return Hit{}, false
	}
	return h, true
}

// First returns the first address in s, or false.
func First(s string) (Hit, bool) {
	h := Hits(s)
	if len(h) == 0 {
		return Hit{}, false
	}
	return h[0], true
}

var reHostName = regexp.MustCompile(`^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$`)

// HostName returns s as a lower-case DNS name, or "" when it is not one
// (an address, a bare word, one of our own AWS host names).
func HostName(s string) string {
	s = strings.ToLower(strings.Trim(strings.TrimSpace(s), `"'<>()[],;.`))
	if len(s) > 253 || !reHostName.MatchString(s) {
		return ""
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	if strings.HasSuffix(s, ".compute.amazonaws.com") || strings.HasSuffix(s, ".compute.internal") ||
		strings.HasSuffix(s, ".amazonaws.com") && strings.HasPrefix(s, "ec2-") {
		return ""
	}
	return s
}
