// Package logtext holds the small byte-level helpers that the notice parser
// (mail/notice) and the evidence parser (analyze/evidence) both use on
// untrusted report and log text: ASCII lower-casing that keeps byte offsets,
// literal pre-checks, key=value fields and protocol names. Keeping them in one
// place keeps the two parsers agreeing on what a field or a protocol is.
//
// Every function runs in time linear in its input and allocates at most its
// result, so hostile lines of any length stay cheap.
package logtext

import (
	"regexp"
	"strings"
)

// Lower lower-cases ASCII letters only, so that byte offsets in the result
// are offsets in s: a literal found in Lower(s) locates the same bytes in s.
func Lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ContainsAny reports whether s contains one of subs.
func ContainsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// IsWordByte reports whether c is an ASCII letter, digit or underscore.
func IsWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

// Pair is one key=value field of a lower-case line: the key and the byte
// offset where its value starts (in the line and in its lower-case twin).
type Pair struct {
	Key   string
	Value int
}

// Pairs finds the key=value fields of a lower-case line in one pass, as in
// iptables, UFW and flow-export lines ("src=… dst=… proto=udp dport=80").
// A key is a run of lower-case letters and underscores that does not follow
// another word byte; the value starts right after the '='.
func Pairs(lower string) []Pair { return pairs(lower, false) }

// LabelPairs is Pairs that also takes "key: value" fields and skips the
// blanks after the '=' or ':', so that the value starts at its first byte.
func LabelPairs(lower string) []Pair { return pairs(lower, true) }

func pairs(lower string, labels bool) []Pair {
	var out []Pair
	for i := 1; i < len(lower); i++ {
		if lower[i] != '=' && (!labels || lower[i] != ':') {
			continue
		}
		k := i
		for k > 0 && (lower[k-1] >= 'a' && lower[k-1] <= 'z' || lower[k-1] == '_') {
			k--
		}
		if k == i || k > 0 && IsWordByte(lower[k-1]) {
			continue
		}
		v := i + 1
		if labels {
			for v < len(lower) && (lower[v] == ' ' || lower[v] == '\t') {
				v++
			}
		}
		out = append(out, Pair{Key: lower[k:i], Value: v})
	}
	return out
}

// LeadingDigits returns the decimal digits s starts with, at most five (the
// longest port).
func LeadingDigits(s string) string {
	i := 0
	for i < len(s) && i < 5 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

// LeadingWord returns the word bytes s starts with, at most eight (enough
// for a protocol name or number).
func LeadingWord(s string) string {
	i := 0
	for i < len(s) && i < 8 && IsWordByte(s[i]) {
		i++
	}
	return s[:i]
}

// Proto maps a protocol field ("TCP", "udp", "6", "17", blanks around) to
// "tcp", "udp" or "".
func Proto(field string) string {
	switch strings.ToLower(strings.TrimSpace(field)) {
	case "tcp", "6":
		return "tcp"
	case "udp", "17":
		return "udp"
	}
	return ""
}

var reLineProto = regexp.MustCompile(`(?i)stratum\+(tcp)\b|/(tcp|udp)\b|\b(tcp|udp)\b`)

// LineProto finds the first protocol a line names ("TCP", "/udp",
// "stratum+tcp") and returns it lower-case, or "". HTTP or SMTP never imply
// one.
func LineProto(s string) string {
	if m := reLineProto.FindStringSubmatch(s); m != nil {
		return strings.ToLower(m[1] + m[2] + m[3])
	}
	return ""
}
