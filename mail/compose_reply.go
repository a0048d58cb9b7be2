package mail

import (
	"bytes"
	"fmt"
	netmail "net/mail"
	"strings"
	"text/template"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Reply is the answer to AWS about one case. It is threaded on the notice
// (In-Reply-To, References, the subject kept) so that AWS's ticket system
// files it under the case.
type Reply struct {
	From      *netmail.Address
	To        *netmail.Address // the notice's Reply-To, else its From; the daemon checks it is in notices.senders
	Hostname  string           // right-hand side of the Message-ID
	Notice    abuse.Notice     // its Subject, MessageID and References are used
	Body      string           // rendered by RenderReply
	Now       time.Time
	MessageID string // "" generates a fresh one; with or without <>
}

// composeMaxRefs bounds References: the first and the latest IDs are the ones
// that thread a message (RFC 5322 §3.6.4), and a forged notice must not
// make our reply's header grow without limit.
const composeMaxRefs = 20

// ComposeReply renders r as a complete message and returns its Message-ID
// with angle brackets. It sets no Auto-Submitted header: AWS's ticket
// system drops auto-submitted mail, and this reply is a person's answer
// sent on their confirmation.
func ComposeReply(r Reply) (raw []byte, messageID string, err error) {
	if err := composeCheckHost(r.Hostname); err != nil {
		return nil, "", fmt.Errorf("compose reply: %w", err)
	}
	if r.To == nil {
		return nil, "", fmt.Errorf("compose reply: no To address")
	}
	if strings.TrimSpace(r.Body) == "" {
		return nil, "", fmt.Errorf("compose reply: empty body")
	}
	c, err := composeStart(r.Now, r.From, []*netmail.Address{r.To})
	if err != nil {
		return nil, "", fmt.Errorf("compose reply: %w", err)
	}
	id := composeMsgID(r.MessageID)
	switch {
	case r.MessageID != "" && id == "":
		return nil, "", fmt.Errorf("compose reply: Message-ID %q is not usable", r.MessageID)
	case id == "":
		local, err := composeNewID()
		if err != nil {
			return nil, "", fmt.Errorf("compose reply: %w", err)
		}
		id = local + "@" + r.Hostname
	}
	c.add("Message-ID", "<"+id+">")
	c.add("Subject", composeSubject(composeReplySubject(r.Notice)))
	parent := composeMsgID(r.Notice.MessageID)
	if parent != "" {
		c.msgIDs("In-Reply-To", []string{parent})
	}
	c.msgIDs("References", composeReferences(r.Notice.References, parent))
	composeText(c)

	raw, err = composeWrite(c, strings.ReplaceAll(r.Body, "\r\n", "\n"))
	if err != nil {
		return nil, "", fmt.Errorf("compose reply: %w", err)
	}
	return raw, "<" + id + ">", nil
}

// composeReplySubject keeps the notice's subject exactly, because AWS
// matches replies to cases by the "[case id]" in it.
func composeReplySubject(n abuse.Notice) string {
	s := composeLine(n.Subject, 0)
	if s == "" {
		return "Re: AWS abuse report " + composeLine(n.CaseID, 60)
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// composeReferences is the notice's References plus its own Message-ID,
// each once, in order, capped at composeMaxRefs (the oldest is kept).
func composeReferences(refs []string, parent string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range append(append([]string(nil), refs...), parent) {
		if id := composeMsgID(r); id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if len(out) > composeMaxRefs {
		out = append(out[:1:1], out[len(out)-composeMaxRefs+1:]...)
	}
	return out
}

// ReplyData is what a reply template can use. Every field is plain text
// that the daemon has already checked; times are formatted in UTC.
type ReplyData struct {
	CaseID, AccountID, Activity string
	Regions                     []string
	Instances                   []string // "i-… (198.51.100.7, eu-central-1)"
	AbuseTime                   string
	Targets                     []string
	Findings                    []string
	Actions                     []string // each with its UTC time; empty in report-only mode
	Prevention                  []string
	AdminNote                   string // the approver's note, verbatim
	Contact                     string
	Now                         time.Time
}

// composeReplyFuncs are the helpers a reply template may call:
// join LIST SEP, indent N TEXT, and utc TIME.
var composeReplyFuncs = template.FuncMap{
	"join": func(l []string, sep string) string { return strings.Join(l, sep) },
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n")
	},
	"utc": func(t time.Time) string { return composeUTC(t, false) },
}

// DefaultReplyTemplate returns the built-in reply template, so that an
// admin can start a custom one ([reply] template) from it.
func DefaultReplyTemplate() string {
	b, err := composeTemplates.ReadFile("templates/reply.txt.tmpl")
	if err != nil {
		panic("mail: embedded reply template missing: " + err.Error())
	}
	return string(b)
}

// RenderReply fills a reply template ("" for the built-in one) with d. A
// template that names an unknown field or function fails here, at render
// time, rather than sending a reply with a hole in it. Trailing spaces and
// runs of blank lines are tidied.
func RenderReply(templateText string, d ReplyData) (string, error) {
	if templateText == "" {
		templateText = DefaultReplyTemplate()
	}
	t, err := template.New("reply").Option("missingkey=error").Funcs(composeReplyFuncs).Parse(templateText)
	if err != nil {
		return "", fmt.Errorf("parse reply template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", fmt.Errorf("render reply template: %w", err)
	}
	return composeTidy(buf.String()), nil
}
