package host

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// indicator is one reason to suspect a script. Strong indicators flag a
// script alone; weak ones (things a legitimate plugin may also do, such as
// WordPress's own curl_multi loop) need a second indicator.
type indicator struct {
	pos    int // offset of the match in the content
	text   string
	strong bool
}

// maxHits bounds the matches of one literal examined per file, so that a
// pathological file cannot make the scan quadratic.
const maxHits = 200

// Regular expressions run only on a small window around a literal match,
// never over a whole file.
var (
	loopRE     = regexp.MustCompile(`\b(?:while|for|foreach)\s*\(|\bdo\s*\{`)
	passListRE = regexp.MustCompile(`foreach\s*\(\s*(?:\$\w*(?:pass|pwd|word|dict)\w*|(?:file|explode)\s*\([^)]*(?:pass|pwd|word|dict)[^)]*\))[^)]*\bas\b`)
)

// inspectScript looks for attack indicators in the content of a script.
// It returns the offset of the first one and a reason, or ok false. lower
// is scratch space for the lower-cased content and is returned for reuse.
func (c *collector) inspectScript(content, lower []byte) (pos int, reason string, ok bool, _ []byte) {
	lower = lowerASCII(lower, content)
	var ins []indicator
	var addrs, hosts []string
	addrAt, hostAt := len(content), len(content)
	for _, n := range c.addrs {
		if i := n.index(lower); i >= 0 {
			addrs, addrAt = append(addrs, n.addr.String()), min(addrAt, i)
		}
	}
	for _, h := range c.hosts {
		if i := hostIndex(lower, h); i >= 0 {
			hosts, hostAt = append(hosts, string(h)), min(hostAt, i)
		}
	}
	// One indicator per kind, however many targets the script names: a
	// scanner with fifty addresses is one finding, said once.
	if len(addrs) > 0 {
		ins = append(ins, indicator{addrAt, targetsText("contains target", addrs), true})
	}
	if len(hosts) > 0 {
		ins = append(ins, indicator{hostAt, targetsText("contains target host", hosts), true})
	}
	ins = append(ins, codeIndicators(lower)...)
	strong, weak := 0, 0
	pos = len(content)
	texts := make([]string, 0, len(ins))
	for _, in := range ins {
		if in.strong {
			strong++
		} else {
			weak++
		}
		pos = min(pos, in.pos)
		texts = append(texts, in.text)
	}
	if strong == 0 && weak < 2 {
		return 0, "", false, lower
	}
	return pos, joinAnd(texts), true, lower
}

// maxNamed bounds the targets a reason names; the rest are counted.
const maxNamed = 5

// targetsText says "contains target 203.0.113.5" or "contains targets
// 203.0.113.5, 203.0.113.6 and 2 more".
func targetsText(what string, names []string) string {
	if len(names) == 1 {
		return what + " " + names[0]
	}
	shown := names[:min(len(names), maxNamed)]
	text := what + "s " + strings.Join(shown, ", ")
	if rest := len(names) - len(shown); rest > 0 {
		text += fmt.Sprintf(" and %d more", rest)
	}
	return text
}

// codeIndicators finds the known attack patterns in lower-cased content.
func codeIndicators(b []byte) []indicator {
	var ins []indicator
	first := func(i int, text string, strong bool) {
		if i >= 0 {
			ins = append(ins, indicator{i, text, strong})
		}
	}
	for _, dec := range []string{"base64_decode", "gzinflate", "gzuncompress", "str_rot13"} {
		first(findLiteral(b, dec, func(i int) bool { return calledBy(b, i, "eval") }),
			"an eval("+dec+"(…)) payload", true)
	}
	first(findLiteral(b, "assert", func(i int) bool { return wordStart(b, i) && argStartsWith(b, i+len("assert"), "$_") }),
		"assert() on request input", true)
	first(findLiteral(b, "eval", func(i int) bool { return wordStart(b, i) && argStartsWith(b, i+len("eval"), "$_") }),
		"eval() on request input", true)
	first(findLiteral(b, "preg_replace", func(i int) bool { return wordStart(b, i) && pregEval(b, i+len("preg_replace")) }),
		"preg_replace with the /e modifier", true)
	multi := func(i int) bool { return nearLoop(b, i) }
	curl := findLiteral(b, "curl_multi_exec", multi)
	if curl < 0 {
		curl = findLiteral(b, "curl_multi_init", multi)
	}
	first(curl, "a curl_multi loop", false)
	first(findLiteral(b, "fsockopen", func(i int) bool { return nearLoop(b, i) }), "an fsockopen loop", false)
	for _, ep := range []string{"wp-login.php", "xmlrpc.php"} {
		if i, url := remoteURL(b, ep); i >= 0 {
			first(i, "a remote "+ep+" URL ("+url+")", false)
		}
	}
	if i := bytes.Index(b, []byte("system.multicall")); i >= 0 {
		first(i, "an xmlrpc system.multicall", false)
	}
	first(findLiteral(b, "foreach", func(i int) bool {
		line := lineAround(b, i)
		return namesPassword(line) && passListRE.Match(line) // most foreach lines name no password: skip the regexp
	}), "a password-list loop", false)
	return ins
}

// namesPassword reports whether a lower-cased line mentions passwords or
// word lists.
func namesPassword(line []byte) bool {
	for _, w := range []string{"pass", "pwd", "word", "dict"} {
		if bytes.Contains(line, []byte(w)) {
			return true
		}
	}
	return false
}

// findLiteral returns the offset of the first occurrence of lit in b for
// which ok holds, or -1.
func findLiteral(b []byte, lit string, ok func(int) bool) int {
	l := []byte(lit)
	off := 0
	for n := 0; n < maxHits && off < len(b); n++ {
		i := bytes.Index(b[off:], l)
		if i < 0 {
			return -1
		}
		i += off
		if ok(i) {
			return i
		}
		off = i + len(l)
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// calledBy reports whether the call at b[i:] is the argument of fn, as in
// eval(base64_decode( or eval ( @gzinflate(.
func calledBy(b []byte, i int, fn string) bool {
	j := i - 1
	for j >= 0 && (b[j] == ' ' || b[j] == '\t' || b[j] == '@') {
		j--
	}
	if j < 0 || b[j] != '(' {
		return false
	}
	j--
	for j >= 0 && (b[j] == ' ' || b[j] == '\t') {
		j--
	}
	start := j + 1 - len(fn)
	return start >= 0 && string(b[start:j+1]) == fn && wordStart(b, start)
}

// wordStart reports whether b[i:] starts a name rather than continuing
// one, so that my_eval( is not eval(.
func wordStart(b []byte, i int) bool {
	return i == 0 || !(isAlnum(b[i-1]) || b[i-1] == '_' || b[i-1] == '$')
}

// argStartsWith reports whether the first argument of the call whose name
// ends at b[i] starts with prefix: assert($_POST['x']).
func argStartsWith(b []byte, i int, prefix string) bool {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '(' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '@' {
		i = skipSpace(b, i+1)
	}
	return bytes.HasPrefix(b[i:], []byte(prefix))
}

// pregEval reports whether the preg_replace call whose name ends at b[i]
// has a literal pattern with the e modifier: preg_replace('/x/e', …).
func pregEval(b []byte, i int) bool {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '(' {
		return false
	}
	i = skipSpace(b, i+1)
	if i+2 >= len(b) || b[i] != '\'' && b[i] != '"' {
		return false
	}
	quote, delim := b[i], b[i+1]
	if isAlnum(delim) || delim == '\\' || delim == ' ' {
		return false
	}
	end := bytes.IndexByte(b[i+2:], quote)
	if end < 0 || end > 4096 {
		return false
	}
	pattern := b[i+2 : i+2+end]
	if delim == '(' {
		delim = ')'
	} else if delim == '{' {
		delim = '}'
	}
	last := bytes.LastIndexByte(pattern, delim)
	return last >= 0 && bytes.IndexByte(pattern[last+1:], 'e') >= 0
}

// nearLoop reports whether a loop construct surrounds offset i: a loop
// keyword within about 1.5 KB before it or 200 bytes after it (do … while).
func nearLoop(b []byte, i int) bool {
	return loopRE.Match(b[max(0, i-1536):min(len(b), i+200)])
}

// remoteURL finds an absolute http(s) URL ending in endpoint, such as
// https://203.0.113.44/wp-login.php, and returns its offset and text.
func remoteURL(b []byte, endpoint string) (int, string) {
	found, url := -1, ""
	findLiteral(b, endpoint, func(i int) bool {
		start := i
		for start > 0 && i-start < 300 && !bytes.ContainsRune([]byte(" \t\r\n'\"`<>()"), rune(b[start-1])) {
			start--
		}
		u := string(b[start : i+len(endpoint)])
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "//") {
			found, url = start, u
			return true
		}
		return false
	})
	return found, url
}

// joinAnd joins reasons as a sentence: "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
