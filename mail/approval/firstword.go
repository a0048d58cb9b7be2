package approval

import (
	"html"
	"regexp"
	"strings"
)

// The verbs an approver can answer with.
const (
	VerbConfirm = "confirm"
	VerbReject  = "reject"
)

var (
	// reOriginal matches the separator line Outlook, Thunderbird and others
	// put above a quoted or forwarded message.
	reOriginal = regexp.MustCompile(`(?i)^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|forwarded message|weitergeleitete nachricht)\s*-{2,}$`)
	// reAttribution matches "On … wrote:" and its translations.
	reAttribution = regexp.MustCompile(`(?i)(\bwrote|\bschrieb|a écrit|escribió|ha scritto|schreef)\s*:$`)
	// reHeaderFrom and reHeaderSent match an Outlook quoted header block
	// ("From: … / Sent: …"), also when the client made the labels bold.
	reHeaderFrom = regexp.MustCompile(`(?i)^\**(from|von|de|van|da)\s*:\**\s`)
	reHeaderSent = regexp.MustCompile(`(?i)^\**(sent|date|gesendet|datum|envoyé|enviado|verzonden|inviato)\s*:\**\s`)
	// reMobile matches the one-line signatures phones add.
	reMobile = regexp.MustCompile(`(?i)^(sent from my |get outlook for |von meinem .* gesendet)`)
)

// FirstWord finds the approver's answer in a reply body: the first line of
// what they wrote themselves. Quoted lines ("> ") are skipped; everything
// from an attribution ("On … wrote:"), an "-----Original Message-----" or
// Outlook "From:/Sent:" block, an Outlook rule of underscores, a phone
// signature or a "-- " signature delimiter on is ignored. The first
// non-empty line must be "confirm" or "reject" alone (any case, trailing
// '.', '!', ',', ';' or ':' allowed): "confirm?" or "I can't confirm this"
// is no answer. note is the approver's lines after the verb, trimmed.
func FirstWord(body string) (verb, note string) {
	lines := strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(body), "\n")
	var own []string
	for i, raw := range lines {
		l := strings.TrimSpace(clean(raw))
		if cutHere(lines, i, l) {
			break
		}
		if strings.HasPrefix(l, ">") {
			continue
		}
		own = append(own, strings.TrimRight(clean(raw), " \t"))
	}
	for i, l := range own {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		verb = strings.ToLower(strings.TrimRight(t, ".!,;: \t"))
		if verb != VerbConfirm && verb != VerbReject {
			return "", ""
		}
		return verb, tidyNote(own[i+1:])
	}
	return "", ""
}

// cutHere reports whether line i (l, trimmed) starts the quoted or signed
// part of a reply.
func cutHere(lines []string, i int, l string) bool {
	switch {
	case l == "--",
		reOriginal.MatchString(l),
		reAttribution.MatchString(l),
		strings.HasPrefix(strings.ToLower(l), "begin forwarded message"),
		len(l) >= 10 && strings.Trim(l, "_") == "",
		reMobile.MatchString(l):
		return true
	}
	lower := strings.ToLower(l)
	// A long Gmail attribution is wrapped: "On Tue, … Abuse Desk <" then
	// "abuse@example.com> wrote:".
	if strings.HasPrefix(lower, "on ") || strings.HasPrefix(lower, "am ") || strings.HasPrefix(lower, "le ") || strings.HasPrefix(lower, "el ") {
		for j := i + 1; j < len(lines) && j <= i+2; j++ {
			if reAttribution.MatchString(strings.TrimSpace(clean(lines[j]))) {
				return true
			}
		}
	}
	if reHeaderFrom.MatchString(l) {
		for j := i + 1; j < len(lines) && j <= i+4; j++ {
			if reHeaderSent.MatchString(strings.TrimSpace(clean(lines[j]))) {
				return true
			}
		}
	}
	return false
}

// clean drops characters that are invisible in a mail client but would
// hide a verb from a plain comparison: zero-width spaces, byte order marks,
// bidirectional controls; a non-breaking space becomes a space.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\u00a0':
			return ' '
		case r == '\u200b', r == '\u200c', r == '\u200d', r == '\u2060', r == '\ufeff',
			r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e', r == '\u200f':
			return -1
		case r < ' ' && r != '\t':
			return -1
		}
		return r
	}, s)
}

// tidyNote joins the note lines, dropping leading and trailing blank lines
// and runs of blank lines inside.
func tidyNote(lines []string) string {
	var out []string
	for _, l := range lines {
		if strings.TrimSpace(l) == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		if strings.TrimSpace(l) == "" {
			l = ""
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

var (
	reHTMLDrop  = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	reHTMLQuote = regexp.MustCompile(`(?i)<blockquote\b|class="?gmail_quote|id="?(divRplyFwdMsg|appendonsend)`)
	reHTMLBreak = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/tr|/li|/h[1-6]|/table|p|div|tr|li|hr)\b[^>]*>`)
	reHTMLTag   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// htmlToText turns an HTML-only reply into lines, crudely: enough for the
// first line. Everything from the first blockquote or client quote marker
// on (the quoted summary) is cut, like a signature.
func htmlToText(s string) string {
	if loc := reHTMLQuote.FindStringIndex(s); loc != nil {
		cut := strings.LastIndexByte(s[:loc[0]+1], '<') // the tag that holds the marker
		s = s[:max(cut, 0)] + "<br>--<br>"
	}
	s = reHTMLDrop.ReplaceAllString(s, "")
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	s = reHTMLBreak.ReplaceAllString(s, "\n")
	s = reHTMLTag.ReplaceAllString(s, "")
	return html.UnescapeString(s)
}
