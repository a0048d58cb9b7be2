package notice

import (
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/logtext"
)

// doc is a text with its ASCII-lower-case twin. Byte offsets agree between
// the two, so a literal found in lower locates the same bytes in s. Literal
// searches in lower decide which regexps run at all: parsing time goes
// into regexps, and most lines match none.
type doc struct {
	s, lower string
}

func newDoc(s string) doc { return doc{s: s, lower: logtext.Lower(s)} }

// slice returns the part of d from byte i to j.
func (d doc) slice(i, j int) doc { return doc{s: d.s[i:j], lower: d.lower[i:j]} }

// has reports whether the text contains any of subs (lower-case literals).
func (d doc) has(subs ...string) bool { return logtext.ContainsAny(d.lower, subs...) }

// lines returns the lines that contain sub (a lower-case literal), joined
// by newlines, for the line-anchored regexps to run on.
func (d doc) lines(sub string) string {
	var out []string
	for from := 0; from < len(d.s); {
		i := strings.Index(d.lower[from:], sub)
		if i < 0 {
			break
		}
		start, end := lineAround(d.s, from+i)
		out = append(out, d.s[start:end])
		from = end + 1
	}
	return strings.Join(out, "\n")
}

// split returns the lines of the text and of its lower-case twin.
func (d doc) split() (lines, lower []string) {
	return strings.Split(d.s, "\n"), strings.Split(d.lower, "\n")
}

// lineAround returns the bounds of the line holding byte i.
func lineAround(s string, i int) (start, end int) {
	start = strings.LastIndexByte(s[:i], '\n') + 1
	end = strings.IndexByte(s[i:], '\n')
	if end < 0 {
		return start, len(s)
	}
	return start, i + end
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
