package mail

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	netmail "net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/abuse-responder/abuse-responder/abuse"
	gomail "github.com/emersion/go-message/mail"
)

// composeDateLayout is the RFC 5322 date with a numeric zone.
const composeDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// composeHeader builds a header whose fields are written in the order they
// were added. go-message writes the field added last first, so the fields
// are added in reverse when the header is made.
type composeHeader struct {
	fields [][2]string
}

func (c *composeHeader) add(k, v string) { c.fields = append(c.fields, [2]string{k, v}) }

func (c *composeHeader) addresses(k string, l []*netmail.Address) {
	parts := make([]string, len(l))
	for i, a := range l {
		parts[i] = a.String()
	}
	c.add(k, strings.Join(parts, ", "))
}

func (c *composeHeader) msgIDs(k string, ids []string) {
	if len(ids) > 0 {
		c.add(k, "<"+strings.Join(ids, "> <")+">")
	}
}

func (c *composeHeader) header() gomail.Header {
	var h gomail.Header
	for i := len(c.fields) - 1; i >= 0; i-- {
		k, v := c.fields[i][0], c.fields[i][1]
		// go-message would write Message-Id and Mime-Version; the raw form
		// keeps the spelling people and some filters expect. Such values
		// are short and single-line, so they need no folding.
		if textproto.CanonicalMIMEHeaderKey(k) != k && len(k)+len(v) < 900 && !strings.ContainsAny(v, "\r\n") {
			h.AddRaw([]byte(k + ": " + v + "\r\n"))
			continue
		}
		h.Add(k, v)
	}
	return h
}

// composeStart returns the fields every mail we send begins with.
func composeStart(now time.Time, from *netmail.Address, to []*netmail.Address) (*composeHeader, error) {
	if from == nil || from.Address == "" {
		return nil, fmt.Errorf("no From address")
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("no To address")
	}
	for _, a := range to {
		if a == nil || a.Address == "" {
			return nil, fmt.Errorf("empty To address")
		}
	}
	if now.IsZero() {
		return nil, fmt.Errorf("no date")
	}
	c := &composeHeader{}
	c.add("MIME-Version", "1.0")
	c.add("Date", now.Format(composeDateLayout))
	c.addresses("From", []*netmail.Address{from})
	c.addresses("To", to)
	return c, nil
}

// composeSubject encodes a subject for the header, leaving plain ASCII as is.
func composeSubject(s string) string {
	return mime.QEncoding.Encode("utf-8", s)
}

// composeText is the standard text/plain part: UTF-8, quoted-printable, so
// that long lines and non-ASCII survive any relay.
func composeText(c *composeHeader) {
	c.add("Content-Type", "text/plain; charset=utf-8")
	c.add("Content-Transfer-Encoding", "quoted-printable")
}

// composeWrite writes the header and body into a complete message.
func composeWrite(c *composeHeader, body string) ([]byte, error) {
	var buf strings.Builder
	w, err := gomail.CreateSingleInlineWriter(&buf, c.header())
	if err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return nil, fmt.Errorf("write body: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write body: %w", err)
	}
	return []byte(buf.String()), nil
}

// composeCheckHost refuses a host name that would break a Message-ID.
func composeCheckHost(host string) error {
	if host == "" || strings.ContainsAny(host, "@<>()[]\\\",;: \t\r\n") || !composePrintableASCII(host) {
		return fmt.Errorf("hostname %q cannot be used in a Message-ID", host)
	}
	return nil
}

// composeMsgID returns id without angle brackets when it is usable in a
// References or In-Reply-To field, else "".
func composeMsgID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || len(id) > 250 || strings.ContainsAny(id, "<> \t\r\n") || !composePrintableASCII(id) {
		return ""
	}
	return id
}

func composePrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// composeNewID makes a fresh Message-ID local part. It is random rather than
// time-based, so that two replies composed at once cannot collide.
func composeNewID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate Message-ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// composeLine makes untrusted text safe to show on one line: control
// characters become spaces, bidirectional overrides (which can make text
// read backwards) are dropped, and the line is cut at max runes.
func composeLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	for i, r := range s {
		if max > 0 && n == max {
			if strings.TrimSpace(s[i:]) != "" {
				return strings.TrimRight(b.String(), " ") + " …"
			}
			break
		}
		switch {
		case r == '\t':
			b.WriteString("    ")
		case unicode.IsControl(r):
			b.WriteByte(' ')
		case unicode.Is(unicode.Bidi_Control, r), r == '\u200b', r == '\ufeff':
			continue
		default:
			b.WriteRune(r)
		}
		n++
	}
	return strings.TrimRight(b.String(), " ")
}

// composeLines cleans each line of a multi-line text with composeLine.
func composeLines(s string, max int) []string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = composeLine(l, max)
	}
	return lines
}

// composeUTC formats a time for people in several time zones.
func composeUTC(t time.Time, seconds bool) string {
	if seconds {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// composeUntil says how long is left before t, in the unit a busy admin
// needs: hours, or minutes in the last hour.
func composeUntil(t, now time.Time) string {
	d := t.Sub(now)
	late := d < 0
	if late {
		d = -d
	}
	var s string
	if d < time.Hour {
		s = strconv.Itoa(int(d/time.Minute)) + " min"
	} else {
		s = strconv.Itoa(int(d/time.Hour)) + " h"
	}
	if late {
		return "overdue by " + s
	}
	return "in " + s
}

// composeTarget formats one target as "203.0.113.10 tcp/23".
func composeTarget(t abuse.Target) string {
	s := t.IP.String()
	switch {
	case t.Port != 0 && t.Protocol != "":
		s += " " + t.Protocol + "/" + strconv.Itoa(int(t.Port))
	case t.Port != 0:
		s += " port " + strconv.Itoa(int(t.Port))
	case t.Protocol != "":
		s += " " + t.Protocol
	}
	return s
}

// composeResource formats one instance as "i-… (198.51.100.7, eu-central-1)",
// the form ReplyData.Instances uses too.
func composeResource(r abuse.Resource) string {
	var in []string
	for _, s := range []string{r.PublicIP, r.Region} {
		if s != "" {
			in = append(in, composeLine(s, 80))
		}
	}
	s := composeLine(r.InstanceID, 80)
	if s == "" {
		s = "(no instance ID)"
	}
	if len(in) > 0 {
		s += " (" + strings.Join(in, ", ") + ")"
	}
	return s
}
