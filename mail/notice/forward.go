package notice

import (
	"net/mail"
	"regexp"
	"strings"
	"time"
)

// reForwardMarker finds the line where a mail client starts an inline
// forward: Gmail, Outlook ("Original Message" or a bare header block after a
// rule) and Apple Mail.
var reForwardMarker = regexp.MustCompile(`(?im)^[> \t]*(?:-{2,}\s*Forwarded message\s*-{2,}|-{2,}\s*Original Message\s*-{2,}|Begin forwarded message:|_{10,}|-{2,}\s*Weitergeleitete Nachricht\s*-{2,}|-{2,}\s*Message transféré\s*-{2,})[ \t]*$`)

var reHeaderLine = regexp.MustCompile(`^(?i)(From|Sent|Date|To|Cc|Subject|Reply-To|Von|Gesendet|An|Betreff|Datum|De|Envoyé|À|Objet)\s*:\s*(.*)$`)

// source is the mail whose text is parsed for a notice: the top-level mail,
// or the notice inside a forward.
type source struct {
	from    string // bare address, lower-case
	subject string
	date    time.Time // zero when unknown
	text    string
}

// inlineForward looks for a forwarded message in text and returns it. Of
// several forward blocks (a forward of a forward), the one from an AWS
// sender wins, then one whose subject looks like a notice, then the last.
func inlineForward(text string) (source, bool) {
	// A real forward chain has a handful of markers; more is a hostile mail,
	// and each block costs a pass over the rest of the text.
	locs := reForwardMarker.FindAllStringIndex(text, 16)
	var blocks []source
	for _, loc := range locs {
		if src, ok := forwardBlock(text[loc[1]:]); ok {
			blocks = append(blocks, src)
		}
	}
	if len(blocks) == 0 {
		return source{}, false
	}
	for _, b := range blocks {
		if isNoticeSender(b.from) {
			return b, true
		}
	}
	for _, b := range blocks {
		if reSubject.MatchString(b.subject) {
			return b, true
		}
	}
	return blocks[len(blocks)-1], true
}

// forwardBlock reads the header lines that follow a forward marker and the
// body after them. It needs at least a From or a Subject line to count.
func forwardBlock(rest string) (source, bool) {
	rest = strings.TrimLeft(rest, "\n")
	// The header block is short: read at most its first lines, not the
	// whole rest of the mail.
	lines := strings.SplitN(rest, "\n", maxForwardHeaderLines+1)
	quoted := len(lines) > 0 && strings.HasPrefix(strings.TrimSpace(lines[0]), ">")
	var src source
	var seen int
	i, offset := 0, 0
	for ; i < len(lines) && i < maxForwardHeaderLines; i++ {
		l := lines[i]
		if quoted {
			l = strings.TrimPrefix(strings.TrimLeft(l, " \t"), ">")
		}
		l = strings.TrimSpace(stripMarkup(l))
		if l == "" {
			if seen > 0 {
				break
			}
			offset += len(lines[i]) + 1
			continue
		}
		m := reHeaderLine.FindStringSubmatch(l)
		if m == nil {
			break
		}
		offset += len(lines[i]) + 1
		seen++
		value := strings.TrimSpace(m[2])
		switch strings.ToLower(m[1]) {
		case "from", "von", "de":
			src.from = bareAddress(value)
		case "subject", "betreff", "objet":
			src.subject = value
		case "date", "sent", "gesendet", "datum", "envoyé":
			src.date = parseLooseDate(value)
		}
	}
	if src.from == "" && src.subject == "" {
		return source{}, false
	}
	body := rest[min(offset, len(rest)):]
	if quoted {
		parts := strings.Split(body, "\n")
		for j, l := range parts {
			l = strings.TrimLeft(l, " \t")
			l = strings.TrimPrefix(l, ">")
			parts[j] = strings.TrimPrefix(l, " ")
		}
		body = strings.Join(parts, "\n")
	}
	src.text = body
	return src, true
}

// maxForwardHeaderLines bounds the header block of an inline forward.
const maxForwardHeaderLines = 40

// stripMarkup removes the asterisks Outlook puts around header names
// ("*From:* …") in plain-text renderings.
func stripMarkup(l string) string {
	return strings.ReplaceAll(l, "*", "")
}

// bareAddress returns the lower-case address of a From value such as
// `AWS <x@y>`, `x@y`, or `x@y [mailto:x@y]`.
func bareAddress(v string) string {
	if a, err := mail.ParseAddress(v); err == nil {
		return strings.ToLower(a.Address)
	}
	if i, j := strings.IndexByte(v, '<'), strings.IndexByte(v, '>'); i >= 0 && j > i {
		return strings.ToLower(strings.TrimSpace(v[i+1 : j]))
	}
	for _, f := range strings.Fields(v) {
		f = strings.Trim(f, "[]()<>\"',;")
		f = strings.TrimPrefix(f, "mailto:")
		if strings.Contains(f, "@") {
			return strings.ToLower(f)
		}
	}
	return ""
}

var looseDateLayouts = []string{
	time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 2006 15:04:05 -0700 (MST)",
	"Mon, Jan 2, 2006 at 3:04 PM", "Monday, January 2, 2006 3:04 PM", "Monday, January 2, 2006 15:04",
	"January 2, 2006 at 3:04:05 PM MST", "January 2, 2006 at 3:04 PM MST", "2 January 2006 15:04",
}

// parseLooseDate reads the Date or Sent line of a forward block, which each
// mail client writes its own way; zero when none fits.
func parseLooseDate(v string) time.Time {
	if t, err := mail.ParseDate(v); err == nil {
		return t.UTC()
	}
	for _, layout := range looseDateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
