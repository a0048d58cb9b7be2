package daemon

import (
	"context"
	"fmt"
	netmail "net/mail"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/store"
)

func mailHeader(h textproto.Header) gomail.Header {
	return gomail.Header{Header: message.Header{Header: h}}
}

// queueSummary composes a summary with its final Message-ID, which
// carries the approval token, and queues it under key. Composing inside
// the transaction means a restart resends the same bytes, never a second,
// different summary.
func (d *Daemon) queueSummary(tx *store.Tx, c store.Case, kind, key string, draft string, problems []string, state abuse.State) error {
	an, err := analysisOf(tx, c.ID)
	if err != nil {
		return err
	}
	var findings []string
	if an != nil {
		findings = an.SummaryLines()
	}
	done, err := d.doneLines(tx, c)
	if err != nil {
		return err
	}
	token := ""
	if state == abuse.StateAwaitingApproval {
		token = d.signer.Token(c.ID, c.PlanHash, d.now().Add(d.cfg.TokenTTL))
	} else {
		// No approval is possible: the Message-ID carries no token.
		token = "info." + strings.ReplaceAll(key, ":", ".")
	}
	raw, msgID, err := mail.ComposeSummary(mail.Summary{
		From: d.cfg.From, To: d.cfg.SummaryTo, ReplyTo: d.cfg.ReplyTo, Hostname: d.cfg.Hostname,
		Token: token, Kind: kind, Notice: c.Notice, State: stateInWords(state),
		Done:       done,
		Findings:   findings,
		DraftReply: draft, Problems: problems, Now: d.now(),
	})
	if err != nil {
		return fmt.Errorf("compose summary for %s: %w", c.ID, err)
	}
	_, err = tx.Enqueue(store.OutMail{
		Key: key, CaseID: c.ID, Kind: kind, MessageID: msgID,
		From: d.cfg.From.Address, To: addresses(d.cfg.SummaryTo), Raw: raw,
	})
	return err
}

// doneLines says in the summary what has been changed: the recorded block
// result, the plan waiting for a confirm, or why nothing was.
func (d *Daemon) doneLines(tx *store.Tx, c store.Case) ([]string, error) {
	res, err := blockResult(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if res != nil {
		lines := res.Lines()
		for _, r := range res.Refused {
			lines = append(lines, "not blocked: "+r.What+": "+r.Reason)
		}
		if len(lines) == 0 {
			lines = []string{"nothing blocked"}
		}
		return lines, nil
	}
	if d.cfg.Mode == ModeReportOnly {
		return []string{"no change made: remediate.mode is report-only"}, nil
	}
	p, err := loadPlan(tx, c.ID, c.PlanHash)
	if err != nil || p == nil {
		return []string{"nothing changed yet"}, err
	}
	return append([]string{"nothing changed yet: a confirm applies this plan, then the reply goes out"}, p.Text()...), nil
}

func stateInWords(s abuse.State) string {
	switch s {
	case abuse.StateAwaitingApproval:
		return "waiting for an approver's confirm"
	case abuse.StateNeedsHuman:
		return "needs a human: it will not be answered automatically"
	}
	return string(s)
}

func addresses(list []*netmail.Address) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// draftReply renders the reply to AWS from the case record, its analysis
// included: the same record gives the same text, so the plan hash of the
// draft the approver saw matches the reply that is sent.
func (d *Daemon) draftReply(tx *store.Tx, c store.Case, adminNote string) (string, error) {
	an, err := analysisOf(tx, c.ID)
	if err != nil {
		return "", err
	}
	var findings []string
	if an != nil {
		findings = an.ReplyLines()
	}
	n := c.Notice
	var instances []string
	for _, r := range n.Resources {
		v := r.InstanceID
		var extra []string
		if r.PublicIP != "" {
			extra = append(extra, r.PublicIP)
		}
		if r.Region != "" {
			extra = append(extra, r.Region)
		}
		if v == "" {
			v = "the instance behind"
		}
		if len(extra) > 0 {
			v += " (" + strings.Join(extra, ", ") + ")"
		}
		instances = append(instances, v)
	}
	var targets []string
	for _, t := range n.Targets {
		targets = append(targets, t.String())
	}
	abuseTime := ""
	if n.AbuseTime != nil {
		abuseTime = n.AbuseTime.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	activity := n.ReportedActivity
	if activity == "" {
		activity = string(n.Type)
	}
	res, err := blockResult(tx, c.ID)
	if err != nil {
		return "", err
	}
	text, err := mail.RenderReply(d.cfg.ReplyTemplate, mail.ReplyData{
		Actions: replyActions(res),
		CaseID:  c.ID, AccountID: c.AccountID, Activity: activity, Regions: n.Regions,
		Instances: instances, AbuseTime: abuseTime, Targets: targets, Findings: findings,
		AdminNote: adminNote, Contact: d.cfg.Contact, Now: d.now(),
	})
	if err != nil {
		return "", fmt.Errorf("render the reply for %s: %w", c.ID, err)
	}
	return text, nil
}

// alertUnreadable keeps a mail that looks like trouble and tells the
// admins: a notice must never be dropped silently.
func (d *Daemon) alertUnreadable(ctx context.Context, m store.Message, why string) error {
	return d.store.Update(ctx, func(tx *store.Tx) error {
		key := fmt.Sprintf("message:%d:alert", m.ID)
		n := abuse.Notice{Subject: subjectOf(m.Raw), MessageID: m.MessageID, Evidence: excerpt(m.Raw)}
		raw, msgID, err := mail.ComposeSummary(mail.Summary{
			From: d.cfg.From, To: d.cfg.SummaryTo, ReplyTo: d.cfg.ReplyTo, Hostname: d.cfg.Hostname,
			Token: fmt.Sprintf("alert.%d", m.ID), Kind: "urgent", Notice: n,
			State:    "not handled: the mail could not be read as a notice",
			Problems: []string{why, fmt.Sprintf("the whole mail is kept in the store as message %d", m.ID)},
			Now:      d.now(),
		})
		if err != nil {
			return fmt.Errorf("compose alert: %w", err)
		}
		if _, err := tx.Enqueue(store.OutMail{Key: key, Kind: "alert", MessageID: msgID,
			From: d.cfg.From.Address, To: addresses(d.cfg.SummaryTo), Raw: raw}); err != nil {
			return err
		}
		return tx.SetMessageStatus(m.ID, store.StatusFailed, "", why)
	})
}

func subjectOf(raw []byte) string {
	p := gomail.Header{}
	if h, err := readHeader(raw); err == nil {
		p = mailHeader(h)
	}
	s, err := p.Subject()
	if err != nil {
		return p.Get("Subject")
	}
	return s
}

// excerpt is the start of a mail that could not be parsed, for the admins.
func excerpt(raw []byte) string {
	const max = 2000
	if len(raw) > max {
		raw = raw[:max]
	}
	return strings.ToValidUTF8(string(raw), "?")
}
