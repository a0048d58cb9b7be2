package mail

import (
	"bytes"
	"embed"
	"fmt"
	netmail "net/mail"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

//go:embed templates/summary.txt.tmpl templates/reply.txt.tmpl
var composeTemplates embed.FS

// composeSummaryTmpl lays out the summary body; the data is prepared and
// cleaned in Go, so the template only arranges it.
var composeSummaryTmpl = template.Must(template.New("summary.txt.tmpl").
	Option("missingkey=error").ParseFS(composeTemplates, "templates/summary.txt.tmpl"))

// Summary kinds.
const (
	KindSummary  = "summary"
	KindReminder = "reminder"
	KindUrgent   = "urgent"
)

// Limits that keep a summary readable when a report is huge (a DoS report
// can list thousands of targets) and that bound what untrusted text can do.
const (
	composeEvidenceLines = 20
	composeListItems     = 20
	composeLineRunes     = 200
)

// Summary is the mail to the admins about one case: it tells them what AWS
// reported and what was done, and carries the approval token, so that a
// plain Reply to it can approve the draft reply to AWS.
type Summary struct {
	From       *netmail.Address
	To         []*netmail.Address
	ReplyTo    *netmail.Address // the watched mailbox, so an approver's plain Reply lands where we read
	Hostname   string           // right-hand side of the Message-ID
	Token      string           // approval token: the Message-ID is <Token@Hostname>
	Kind       string           // KindSummary, KindReminder or KindUrgent; "" means KindSummary
	Notice     abuse.Notice
	State      string   // case state in words
	Done       []string // what has been done so far
	Findings   []string // analysis lines; empty says "analysis not available"
	DraftReply string   // the exact text of the reply to AWS
	Problems   []string // validation and security problems, shown first
	Now        time.Time
}

// composeSummaryView is what the summary template shows.
type composeSummaryView struct {
	Banner, CaseID, Account, State string
	Problems, Reported             []string
	Evidence                       []string
	EvidenceMore                   int
	Done, Findings, Draft          []string
	ReplyTo                        string
}

// ComposeSummary renders s as a complete message. The returned messageID
// (with angle brackets) is the one the daemon stores in its outbox and the
// one an approver's reply will carry in In-Reply-To.
func ComposeSummary(s Summary) (raw []byte, messageID string, err error) {
	kind := s.Kind
	if kind == "" {
		kind = KindSummary
	}
	var banner, prefix string
	switch kind {
	case KindSummary:
	case KindReminder:
		prefix, banner = "Reminder: ", "Reminder: this case still waits for your answer."
	case KindUrgent:
		prefix, banner = "URGENT: ", "URGENT: AWS escalated this case. Please answer before the deadline below."
	default:
		return nil, "", fmt.Errorf("compose summary: unknown kind %q", s.Kind)
	}
	if err := composeCheckHost(s.Hostname); err != nil {
		return nil, "", fmt.Errorf("compose summary: %w", err)
	}
	if s.Token == "" || composeMsgID(s.Token+"@"+s.Hostname) == "" || strings.Contains(s.Token, "@") {
		return nil, "", fmt.Errorf("compose summary: token %q cannot be used in a Message-ID", s.Token)
	}
	c, err := composeStart(s.Now, s.From, s.To)
	if err != nil {
		return nil, "", fmt.Errorf("compose summary: %w", err)
	}
	if s.ReplyTo != nil && s.ReplyTo.Address != "" {
		c.addresses("Reply-To", []*netmail.Address{s.ReplyTo})
	}
	id := s.Token + "@" + s.Hostname
	c.add("Message-ID", "<"+id+">")
	c.add("Subject", composeSubject(prefix+composeSummarySubject(s.Notice)))
	// Mark the mail as machine-made so that vacation responders stay quiet
	// and our own approval check never reads it as a human's answer.
	c.add("Auto-Submitted", "auto-generated")
	c.add("X-Auto-Response-Suppress", "All")
	composeText(c)

	var body bytes.Buffer
	if err := composeSummaryTmpl.Execute(&body, composeSummaryData(s, banner)); err != nil {
		return nil, "", fmt.Errorf("compose summary: %w", err)
	}
	raw, err = composeWrite(c, composeTidy(body.String()))
	if err != nil {
		return nil, "", fmt.Errorf("compose summary: %w", err)
	}
	return raw, "<" + id + ">", nil
}

// composeSummarySubject names the case and what it is about, so that the
// admins can sort and search their mail by case.
func composeSummarySubject(n abuse.Notice) string {
	what := composeLine(n.ReportedActivity, 80)
	if what == "" {
		what = composeLine(string(n.Type), 40)
	}
	if what == "" {
		what = "abuse report"
	}
	return "[abuse-responder] Case " + composeOr(composeLine(n.CaseID, 60), "(no case ID)") + ": " + what
}

func composeSummaryData(s Summary, banner string) composeSummaryView {
	n := s.Notice
	v := composeSummaryView{
		Banner:   banner,
		CaseID:   composeOr(composeLine(n.CaseID, 60), "(no case ID)"),
		Account:  composeOr(composeLine(n.AccountID, 40), "(not stated)"),
		State:    composeOr(composeLine(s.State, composeLineRunes), "(unknown)"),
		Problems: composeCleanList(s.Problems, 0),
		Reported: composeReported(n, s.Now),
		Done:     composeCleanList(s.Done, 0),
		Findings: composeCleanList(s.Findings, 0),
		ReplyTo:  composeLine(composeOr(n.ReplyTo, n.Sender), composeLineRunes),
	}
	var evidence []string
	for _, l := range composeLines(strings.TrimSpace(n.Evidence), composeLineRunes) {
		if len(evidence) == 0 && l == "" {
			continue
		}
		evidence = append(evidence, l)
	}
	if len(evidence) > composeEvidenceLines {
		v.EvidenceMore = len(evidence) - composeEvidenceLines
		evidence = evidence[:composeEvidenceLines]
	}
	v.Evidence = evidence
	if d := strings.TrimRight(s.DraftReply, " \t\r\n"); d != "" {
		v.Draft = composeLines(d, 0)
	}
	return v
}

// composeReported lists what AWS said, one "Label: value" line each, with
// lists continued under the value.
func composeReported(n abuse.Notice, now time.Time) []string {
	var out []string
	field := func(label string, values ...string) {
		if len(values) == 0 {
			values = []string{"(not stated)"}
		}
		if len(values) > composeListItems {
			more := len(values) - composeListItems
			values = append(values[:composeListItems:composeListItems], "("+strconv.Itoa(more)+" more)")
		}
		for i, v := range values {
			if i == 0 {
				out = append(out, fmt.Sprintf("%-13s %s", label+":", v))
			} else {
				out = append(out, fmt.Sprintf("%-13s %s", "", v))
			}
		}
	}
	activity := composeLine(n.ReportedActivity, 80)
	switch typ := composeLine(string(n.Type), 40); {
	case typ == "":
	case activity == "":
		activity = typ
	default:
		activity += " (" + typ + ")"
	}
	field("Activity", composeNonEmpty(activity)...)
	field("Stage", composeNonEmpty(composeLine(string(n.Stage), 40))...)
	field("Account", composeNonEmpty(composeLine(n.AccountID, 40))...)
	field("Regions", composeCleanList(n.Regions, 80)...)
	var inst []string
	for _, r := range n.Resources {
		inst = append(inst, composeResource(r))
	}
	field("Instances", inst...)
	if n.AbuseTime != nil {
		field("Abuse time", composeUTC(*n.AbuseTime, true))
	} else {
		field("Abuse time")
	}
	var targets []string
	for _, t := range n.Targets {
		targets = append(targets, composeTarget(t))
	}
	field("Targets", targets...)
	if len(n.TargetHosts) > 0 {
		field("Target hosts", composeCleanList(n.TargetHosts, 120)...)
	}
	if len(n.AWSActions) > 0 {
		field("AWS blocked", composeCleanList(n.AWSActions, composeLineRunes)...)
	}
	switch {
	case n.ReplyBy != nil:
		field("Reply by", composeUTC(*n.ReplyBy, false)+" ("+composeUntil(*n.ReplyBy, now)+")")
	case n.Date != nil:
		by := n.Date.Add(abuse.ReplyWindow)
		field("Reply by", composeUTC(by, false)+" ("+composeUntil(by, now)+"; estimated: 24 h after the notice)")
	default:
		field("Reply by")
	}
	sent := composeLine(n.Sender, 120)
	if n.Date != nil {
		sent = strings.TrimSpace(sent + ", " + composeUTC(*n.Date, false))
	}
	field("Notice from", composeNonEmpty(strings.Trim(sent, ", "))...)
	field("Subject", composeNonEmpty(composeLine(n.Subject, composeLineRunes))...)
	return out
}

// composeCleanList cleans each item with composeLine and drops empty ones.
func composeCleanList(l []string, max int) []string {
	if max == 0 {
		max = composeLineRunes * 4
	}
	var out []string
	for _, s := range l {
		if s = composeLine(s, max); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func composeNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func composeOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// composeTidy removes trailing spaces, collapses runs of blank lines and
// ends the text with one newline, so that templates can be written for
// readability rather than for exact whitespace.
func composeTidy(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, l)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}
