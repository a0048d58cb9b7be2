package evidence

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/abuse-responder/abuse-responder/internal/ipscan"
)

// maxDetail bounds Event.Detail: a hostile line may be megabytes long.
const maxDetail = 160

// short trims s to maxDetail bytes at a rune boundary, marking the cut.
func short(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

var reProtoWord = regexp.MustCompile(`(?i)\b(tcp|udp)\b`)

// protoWord finds a bare TCP or UDP word, as in "(TCP port being scanned)".
func protoWord(s string) string {
	return strings.ToLower(reProtoWord.FindString(s))
}

// port reads a decimal port, 0 when s is not one.
func port(s string) uint16 {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 || n > 65535 {
		return 0
	}
	return uint16(n)
}

// hitPort is a scanned port as a uint16 (ipscan uses -1 for none).
func hitPort(h ipscan.Hit) uint16 {
	if h.Port <= 0 || h.Port > 65535 {
		return 0
	}
	return uint16(h.Port)
}

// addrAfter returns the address right after the first label in line
// (label found in lower, spaces skipped), or the zero address.
func addrAfter(line, lower, label string) netip.Addr {
	i := strings.Index(lower, label)
	if i < 0 {
		return netip.Addr{}
	}
	j := i + len(label)
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if h, ok := ipscan.At(line, j); ok {
		return h.Addr
	}
	return netip.Addr{}
}

// quoted returns the first "…" string in s at or after i and where it ends.
func quoted(s string, i int) (string, int, bool) {
	a := strings.IndexByte(s[i:], '"')
	if a < 0 {
		return "", len(s), false
	}
	a += i + 1
	b := strings.IndexByte(s[a:], '"')
	if b < 0 {
		return "", len(s), false
	}
	return s[a : a+b], a + b + 1, true
}

// requestLine shortens "GET /path HTTP/1.1" to "GET /path".
func requestLine(r string) string {
	r = strings.TrimSpace(r)
	if i := strings.LastIndex(r, " HTTP/"); i > 0 {
		r = r[:i]
	}
	return r
}
