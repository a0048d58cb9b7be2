package notice

import (
	"html"
	"regexp"
	"strings"
)

var (
	reHTMLDrop  = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	reHTMLBreak = regexp.MustCompile(`(?i)<\s*(br|/p|/div|/tr|/li|/h[1-6]|/table|p|div|tr|li|hr)\b[^>]*>`)
	reHTMLCell  = regexp.MustCompile(`(?i)<\s*/t[dh]\s*>`)
	reHTMLTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpaceRun  = regexp.MustCompile(`[ \t]+`)
)

// htmlToText turns an HTML-only notice into the text a mail client shows, so
// that the same line-oriented rules apply. Tags are stripped before entities
// are decoded: a log extract written as &lt;&lt;&lt; must survive as <<<.
func htmlToText(s string) string {
	s = reHTMLDrop.ReplaceAllString(s, "")
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	s = reHTMLBreak.ReplaceAllString(s, "\n")
	s = reHTMLCell.ReplaceAllString(s, "\t")
	s = reHTMLTag.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(reSpaceRun.ReplaceAllString(l, " "))
	}
	return strings.Join(lines, "\n")
}
