// Package notice turns a raw AWS abuse mail into an abuse.Notice. It only
// extracts: it makes no network call, trusts nothing in the reporter's text
// beyond well-formed addresses, ports and times, and leaves the decision to
// act to the security checks of the daemon. Validate checks the fields.
package notice

import (
	"regexp"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Result is the outcome of parsing one mail.
type Result struct {
	// IsNotice is false for mail that is not an AWS abuse notice; Reason
	// then says why.
	IsNotice bool
	Reason   string
	Notice   *abuse.Notice
}

// reSubject matches the subjects of AWS abuse reports, after any reply or
// forward prefixes (FORMATS.md §2).
var reSubject = regexp.MustCompile(`(?i)^\s*(?:(?:re|fwd?|aw|wg|tr|sv|vs|antw|rif|r)\s*(?:\[\d+\])?\s*:\s*)*your (?:amazon (?:ec2 )?|aws )abuse report\b`)

// reForwardSubject matches the subject prefixes mail clients add when a
// person forwards a mail.
var reForwardSubject = regexp.MustCompile(`(?i)^\s*(?:fwd?|wg|tr|vs|i)\s*:`)

// noticeSenders are the addresses AWS sends customer notices from. The
// security model decides trust from the configured list; this one only
// helps tell a notice from other mail.
var noticeSenders = map[string]bool{
	"ec2-abuse@amazon.com":           true,
	"trustandsafety@support.aws.com": true,
	"abuse@amazonaws.com":            false,
}

func isNoticeSender(addr string) bool { return noticeSenders[addr] }

// shieldSender writes to other networks about abuse from them: never a
// notice about our resources.
const shieldSender = "aws-shield-external@amazon.com"

// reMarkers are phrases and labels that only AWS's notice templates carry.
var reMarkers = regexp.MustCompile(`(?i)received an? (?:abuse |vulnerability )?report\(?s?\)? (?:that your AWS resource|implicating resources)|has been implicated in|implicated resource\s*:|reported activity\s*:|reported vulnerability\s*:|===== *details *=====|-{2,} *beginning of forwarded report|may be infected with malware|we recently sent an abuse report|follow up on your outstanding (?:ec2 )?abuse report|not received a response regarding the abuse report|final notification`)

// Parse extracts the notice from raw within DefaultLimits.
func Parse(raw []byte) (Result, error) {
	return ParseWithLimits(raw, DefaultLimits)
}

// ParseWithLimits extracts the notice from raw. An error means the mail
// could not be read at all (too large, too complex, no header); a mail that
// is readable but not a notice gives IsNotice false and no error.
func ParseWithLimits(raw []byte, lim Limits) (Result, error) {
	top, err := readMessage(raw, lim)
	if err != nil {
		return Result{}, err
	}
	outer := headerSource(top)
	outerSubject := outer.subject

	src, forwarded := outer, false
	if inner, ok := forwardedNotice(top, outer); ok {
		src, forwarded = inner, true
	} else if !isNoticeSender(outer.from) && reForwardSubject.MatchString(outerSubject) {
		// Pasted into a "Fwd:" mail without a header block: still a forward.
		forwarded = true
	}
	if src.from == shieldSender || outer.from == shieldSender {
		return Result{Reason: "AWS Shield outbound notice: AWS reporting abuse from another network, not a notice about our resources"}, nil
	}
	text := normalize(src.text)
	if !reSubject.MatchString(src.subject) && !reSubject.MatchString(outerSubject) &&
		!(isNoticeSender(src.from) && reMarkers.MatchString(text)) {
		return Result{Reason: notNoticeReason(outer.from)}, nil
	}

	n := &abuse.Notice{Provider: "aws", Forwarded: forwarded}
	fillHeaders(n, top, outer)
	ref := src.date
	if ref.IsZero() && n.Date != nil {
		ref = *n.Date
	}
	extract(n, src.subject, outerSubject, text, ref)
	return Result{IsNotice: true, Notice: n}, nil
}

func notNoticeReason(from string) string {
	if strings.HasSuffix(from, "@amazon.com") || strings.HasSuffix(from, ".amazon.com") ||
		strings.HasSuffix(from, "aws.com") || strings.HasSuffix(from, "amazonaws.com") {
		return "mail from " + from + " that is not an abuse report: no abuse-report subject and no notice markers"
	}
	return "not an AWS abuse notice: no abuse-report subject and no notice markers from an AWS notice sender"
}

// headerSource describes a part by its own header and text.
func headerSource(p *part) source {
	s := source{text: p.text()}
	if list, err := p.header.AddressList("From"); err == nil && len(list) > 0 {
		s.from = strings.ToLower(list[0].Address)
	} else {
		s.from = bareAddress(p.header.Get("From"))
	}
	s.subject = headerText(p, "Subject")
	// Most mail writes RFC 1123 dates; the general parser tries dozens of
	// layouts and is the slowest step of reading a header.
	if t, err := time.Parse(time.RFC1123Z, strings.TrimSpace(p.header.Get("Date"))); err == nil {
		s.date = t.UTC()
	} else if t, err := p.header.Date(); err == nil {
		s.date = t.UTC()
	}
	return s
}

func headerText(p *part, key string) string {
	v, err := p.header.Text(key)
	if err != nil {
		v = p.header.Get(key)
	}
	return strings.TrimSpace(v)
}

// forwardedNotice finds a notice that a person forwarded: an attached
// message first, then an inline forward block in the body.
func forwardedNotice(top *part, outer source) (source, bool) {
	if isNoticeSender(outer.from) {
		// AWS's own mail: its forwarded report is evidence, not a forward.
		return source{}, false
	}
	for _, a := range top.attached {
		inner := headerSource(a)
		if reSubject.MatchString(inner.subject) || isNoticeSender(inner.from) || reMarkers.MatchString(inner.text) {
			if nested, ok := forwardedNotice(a, inner); ok {
				return nested, true
			}
			return inner, true
		}
	}
	if inner, ok := inlineForward(normalizeNewlines(outer.text)); ok {
		if reSubject.MatchString(inner.subject) || isNoticeSender(inner.from) || reMarkers.MatchString(inner.text) {
			return inner, true
		}
	}
	return source{}, false
}

// fillHeaders copies what identifies the mail we received; for a forward
// these are the forwarder's, since that is who gets authenticated.
func fillHeaders(n *abuse.Notice, top *part, outer source) {
	n.Sender = outer.from
	n.Subject = outer.subject
	if id, err := top.header.MessageID(); err == nil && id != "" {
		n.MessageID = "<" + id + ">"
	}
	if list, err := top.header.AddressList("Reply-To"); err == nil && len(list) > 0 {
		n.ReplyTo = strings.ToLower(list[0].Address)
	}
	var refs orderedSet
	for _, key := range []string{"References", "In-Reply-To"} {
		if ids, err := top.header.MsgIDList(key); err == nil {
			for _, id := range ids {
				refs.add("<" + id + ">")
			}
		}
	}
	n.References = refs.list
	if !outer.date.IsZero() {
		d := outer.date
		r := d.Add(abuse.ReplyWindow)
		n.Date, n.ReplyBy = &d, &r
	}
}

var typographic = strings.NewReplacer(
	"\u2019", "'", "\u2018", "'", "\u201c", `"`, "\u201d", `"`, "\u00a0", " ",
	"\u2013", "-", "\u2014", "-", "\u200b", "", "\ufeff", "",
)

// normalize makes text comparable with the templates: LF line ends, plain
// apostrophes and spaces.
func normalize(s string) string {
	return typographic.Replace(normalizeNewlines(s))
}

func normalizeNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// orderedSet collects distinct strings in order of first appearance, in
// linear time however many a hostile mail repeats.
type orderedSet struct {
	list []string
	seen map[string]bool
}

func (o *orderedSet) add(v string) {
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	if !o.seen[v] {
		o.seen[v] = true
		o.list = append(o.list, v)
	}
}

// items returns the strings, never nil, so that JSON shows [] not null.
func (o *orderedSet) items() []string {
	if o.list == nil {
		return []string{}
	}
	return o.list
}

// timePtr returns a pointer to a UTC copy of t, or nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
