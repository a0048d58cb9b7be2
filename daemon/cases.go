package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/mail/notice"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

// caseLoop handles stored mail and deadlines. It is the only goroutine
// that changes case state.
func (d *Daemon) caseLoop(ctx context.Context) error {
	return d.loop(ctx, "cases", d.wakeCases, func(ctx context.Context) error {
		// Whatever a step queued is committed when it returns: only then
		// can the outbox loop see it.
		defer wake(d.wakeOutbox)
		if err := d.handlePending(ctx); err != nil {
			return err
		}
		if err := d.advanceBlocking(ctx); err != nil {
			return err
		}
		if err := d.maintainBlocks(ctx); err != nil {
			return err
		}
		// Deadlines move by the clock, not by mail: once a tick is enough,
		// however often mail wakes the loop.
		if d.now().Sub(d.lastDeadlineCheck) < d.cfg.Tick && !d.deadlineWake.Swap(false) {
			return nil
		}
		d.lastDeadlineCheck = d.now()
		return d.checkDeadlines(ctx)
	})
}

// handlePending takes every stored mail not yet handled, oldest first.
func (d *Daemon) handlePending(ctx context.Context) error {
	for {
		msgs, err := d.store.PendingMessages(ctx, 50)
		if err != nil {
			return fmt.Errorf("pending messages: %w", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		for _, m := range msgs {
			if err := d.crashPoint("before-handle"); err != nil {
				return err
			}
			if err := d.handleMessage(ctx, m); err != nil {
				return err
			}
			wake(d.wakeOutbox)
			if err := d.crashPoint("after-handle"); err != nil {
				return err
			}
		}
	}
}

// handleMessage decides what one stored mail is: an approval, a notice,
// or neither, and records the outcome with the message in one transaction.
func (d *Daemon) handleMessage(ctx context.Context, m store.Message) error {
	log := d.log.With("message", m.ID, "message_id", m.MessageID)
	dec, err := approval.Evaluate(m.Raw, d.cfg.Approval, d.signer, d.now())
	switch {
	case err == nil:
		return d.handleApproval(ctx, m, dec, log)
	case errors.Is(err, approval.ErrOwnMail), errors.Is(err, approval.ErrDeliveryReport):
		// Our own mail looped back, or a bounce of it: never a notice and
		// never an approval, or one summary could breed another.
		log.Info("machine mail kept and ignored", "reason", err.Error())
		return d.store.SetMessageStatus(ctx, m.ID, store.StatusIgnored, "", err.Error())
	case errors.Is(err, approval.ErrAutoReply):
		// An auto-reply approves nothing, but AWS's own notices may carry
		// Auto-Submitted or Precedence headers: read it as a notice.
	case !errors.Is(err, approval.ErrNotApproval):
		// It answers one of our summaries but may not approve: say why,
		// and never act on it.
		log.Warn("refused an approval", "reason", err.Error())
		d.metrics.approvalsRefused.Inc()
		return d.store.SetMessageStatus(ctx, m.ID, store.StatusIgnored, "", "refused approval: "+err.Error())
	}

	res, perr := notice.Parse(m.Raw)
	if perr != nil {
		// Unreadable mail is kept in the store and shown to the admins.
		d.metrics.parseFailures.Inc()
		log.Warn("unreadable mail kept for the admins", "err", perr)
		return d.alertUnreadable(ctx, m, perr.Error())
	}
	if !res.IsNotice {
		log.Info("not an abuse notice; kept and ignored", "reason", res.Reason)
		return d.store.SetMessageStatus(ctx, m.ID, store.StatusIgnored, "", res.Reason)
	}
	d.metrics.notices.Inc()
	return d.handleNotice(ctx, m, res.Notice, log)
}

// problemsOf lists why a notice must not be acted on automatically:
// validation problems and the security model's checks.
func (d *Daemon) problemsOf(m store.Message, n *abuse.Notice) (validation, security []string) {
	for _, p := range notice.Validate(n) {
		validation = append(validation, p.Field+": "+p.Message)
	}
	if !slices.Contains(d.cfg.Senders, n.Sender) {
		security = append(security, fmt.Sprintf("sender %s is not in notices.senders", n.Sender))
	}
	if n.AccountID == "" || !slices.Contains(d.cfg.Accounts, n.AccountID) {
		security = append(security, fmt.Sprintf("account %q is not in notices.accounts", n.AccountID))
	}
	if d.cfg.RequireAuthenticatedNotice {
		h, err := readHeader(m.Raw)
		if err != nil {
			security = append(security, "unreadable header: "+err.Error())
		} else if ok, why := approval.Authenticated(mailHeader(h), d.cfg.AuthservID); !ok {
			security = append(security, "sender not authenticated: "+why)
		}
	}
	return validation, security
}

// handleNotice opens a case, or adds a follow-up to its case.
func (d *Daemon) handleNotice(ctx context.Context, m store.Message, n *abuse.Notice, log *slog.Logger) error {
	validation, security := d.problemsOf(m, n)
	if n.CaseID == "" {
		// Without a case ID there is nothing to answer; the admins decide.
		return d.alertUnreadable(ctx, m, "notice without a case ID: "+strings.Join(validation, "; "))
	}
	log = log.With("case", n.CaseID)
	// Analysis may call AWS: run it before the write transaction, which
	// holds the store's only writer.
	var exists bool
	if err := d.store.View(ctx, func(tx *store.Tx) error {
		_, ok, err := tx.Case(n.CaseID)
		exists = ok
		return err
	}); err != nil {
		return err
	}
	var an *analyze.Analysis
	if !exists && d.analyzer != nil {
		a := d.analyzer.Analyze(ctx, *n)
		log.Info("analysed", "verdict", a.Verdict, "cause", a.Cause.Kind, "problems", len(a.Problems))
		an = &a
	}
	var plan *remediate.Plan
	if !exists && d.cfg.Mode == ModeConfirmThenBlock && len(validation)+len(security) == 0 {
		// The summary proposes the plan, and the approval binds to it: plan
		// now, outside the transaction (it reads AWS and the host).
		p, err := d.cfg.Blocker.Plan(ctx, store.Case{ID: n.CaseID, AccountID: n.AccountID, Type: n.Type, Notice: *n}, an)
		if err != nil && !remediate.IsPermanent(err) {
			return fmt.Errorf("plan the block of %s: %w", n.CaseID, err)
		}
		if err != nil {
			p = remediate.Plan{CaseID: n.CaseID, Refused: []remediate.Refusal{{What: "the plan", Reason: err.Error()}}}
		}
		plan = &p
	}
	return d.store.Update(ctx, func(tx *store.Tx) error {
		c, exists, err := tx.Case(n.CaseID)
		if err != nil {
			return err
		}
		if exists {
			return d.followUp(tx, c, m, n, security, log)
		}
		return d.openCase(tx, m, n, an, plan, validation, security, log)
	})
}

// openCase creates the case and queues its summary in the same
// transaction: a crash leaves either both or neither.
func (d *Daemon) openCase(tx *store.Tx, m store.Message, n *abuse.Notice, an *analyze.Analysis, plan *remediate.Plan, validation, security []string, log *slog.Logger) error {
	c := store.Case{
		ID: n.CaseID, State: abuse.StateReceived, AccountID: n.AccountID, Type: n.Type,
		Activity: n.ReportedActivity, Notice: *n, NoticeMessageID: n.MessageID,
		Urgent: n.Stage == abuse.StageFinal || len(n.AWSActions) > 0,
	}
	if n.ReplyBy != nil {
		c.ReplyBy = *n.ReplyBy
	}
	if err := tx.CreateCase(c, "notice "+n.MessageID); err != nil {
		return err
	}
	if err := tx.AddNotice(c.ID, m.ID, *n); err != nil {
		return err
	}
	if err := tx.Transition(c.ID, abuse.StateParsed, "notice parsed"); err != nil {
		return err
	}
	if err := d.recordAnalysis(tx, c.ID, an); err != nil {
		return err
	}
	problems := append(validation, security...)
	if len(problems) == 0 && d.cfg.Mode == ModeBlockThenConfirm {
		// The block comes first, outside this transaction: the case loop
		// picks the analysed case up next (advanceBlocking).
		if err := tx.SetMessageStatus(m.ID, store.StatusHandled, c.ID, "opened the case"); err != nil {
			return err
		}
		d.observeLatency(m.ID)
		log.Info("case opened; blocking next")
		return nil
	}
	next, reason := abuse.StateAwaitingApproval, "report-only: summary sent, waiting for confirm"
	if plan != nil {
		reason = "plan proposed, waiting for confirm"
		if len(plan.Actions) == 0 && len(plan.Refused) > 0 {
			problems = append(problems, "nothing can be blocked: "+refusals(plan.Refused))
		}
	}
	if len(problems) > 0 {
		next, reason = abuse.StateNeedsHuman, strings.Join(problems, "; ")
	}
	draft, err := d.draftReply(tx, c, "")
	if err != nil {
		return err
	}
	c.PlanHash = planHash(c.ID, draft)
	if plan != nil {
		// The approval binds to the reply and to the exact block.
		c.PlanHash = planHash(c.ID, draft+"\x00"+plan.Hash)
		if err := storePlan(tx, c.ID, c.PlanHash, *plan); err != nil {
			return err
		}
	}
	if err := tx.SaveCase(c); err != nil {
		return err
	}
	if err := tx.Transition(c.ID, next, reason); err != nil {
		return err
	}
	kind := "summary"
	if c.Urgent {
		kind = "urgent"
	}
	if err := d.queueSummary(tx, c, kind, c.ID+":summary", draft, problems, next); err != nil {
		return err
	}
	if err := tx.SetMessageStatus(m.ID, store.StatusHandled, c.ID, "opened the case"); err != nil {
		return err
	}
	d.observeLatency(m.ID)
	log.Info("case opened", "state", next, "problems", len(problems))
	return nil
}

// followUp links a reminder, final notice or additional report to its
// case; a final notice or an AWS-applied block escalates it.
func (d *Daemon) followUp(tx *store.Tx, c store.Case, m store.Message, n *abuse.Notice, security []string, log *slog.Logger) error {
	if err := tx.AddNotice(c.ID, m.ID, *n); err != nil {
		return err
	}
	note := "follow-up: " + string(n.Stage)
	if len(security) == 0 {
		extra, err := d.noteAdditional(tx, c, m, n)
		if err != nil {
			return err
		}
		if extra {
			note += " naming another instance: it is blocked next"
		}
	}
	escalate := (n.Stage == abuse.StageFinal || len(n.AWSActions) > 0) && !c.State.Final()
	// AWS writing again about a case we consider done (an answer to our
	// reply, a new report) must reach a person too.
	reopened := c.State.Final()
	if (escalate || reopened) && len(security) == 0 {
		c.Urgent = true
		if err := tx.SaveCase(c); err != nil {
			return err
		}
		draft, err := d.draftReply(tx, c, c.AdminNote)
		if err != nil {
			return err
		}
		var problems []string
		switch c.State {
		case abuse.StateNeedsHuman:
			problems = []string{"the case needs a human: see the first summary"}
		case abuse.StateClosed, abuse.StateRejected:
			problems = []string{fmt.Sprintf("AWS wrote again about this case after it was %s: read the new mail (%s) and answer it by hand", c.State, n.MessageID)}
		}
		key := fmt.Sprintf("%s:urgent:%d", c.ID, m.ID)
		shown := c
		shown.Notice = escalated(c.Notice, *n)
		if err := d.queueSummary(tx, shown, "urgent", key, draft, problems, c.State); err != nil {
			return err
		}
		note = "escalated: " + string(n.Stage)
		if reopened {
			note = "AWS wrote again after the case was " + string(c.State) + "; the admins are told"
		}
	}
	if len(security) > 0 {
		note += " (not authenticated as AWS: " + strings.Join(security, "; ") + ")"
	}
	log.Info("follow-up joined its case", "stage", n.Stage, "escalated", escalate)
	return tx.SetMessageStatus(m.ID, store.StatusHandled, c.ID, note)
}

// escalated is what an urgent summary shows: the case's first notice,
// with the stage, AWS's blocks, and any resources, targets and evidence
// of the follow-up that escalated it.
func escalated(first, follow abuse.Notice) abuse.Notice {
	n := first
	n.Stage = follow.Stage
	n.AWSActions = follow.AWSActions
	if len(follow.Resources) > 0 {
		n.Resources = follow.Resources
	}
	if len(follow.Targets) > 0 {
		n.Targets = follow.Targets
	}
	if follow.Evidence != "" {
		n.Evidence = follow.Evidence
	}
	return n
}

// recordAnalysis stores the analysis with the case and moves it to
// analyzed, in the case's first transaction.
func (d *Daemon) recordAnalysis(tx *store.Tx, caseID string, an *analyze.Analysis) error {
	if an == nil {
		return tx.Transition(caseID, abuse.StateAnalyzed, "no analysis configured")
	}
	doc, err := json.Marshal(an)
	if err != nil {
		return fmt.Errorf("encode the analysis of %s: %w", caseID, err)
	}
	if err := tx.AddAnalysis(store.Analysis{CaseID: caseID, Verdict: string(an.Verdict), Doc: doc}); err != nil {
		return err
	}
	return tx.Transition(caseID, abuse.StateAnalyzed, fmt.Sprintf("verdict %s: %s", an.Verdict, an.Why))
}

// analysisOf returns the case's latest analysis, or nil when it has none.
func analysisOf(tx *store.Tx, caseID string) (*analyze.Analysis, error) {
	rec, ok, err := tx.LatestAnalysis(caseID)
	if err != nil || !ok {
		return nil, err
	}
	var an analyze.Analysis
	if err := json.Unmarshal(rec.Doc, &an); err != nil {
		return nil, fmt.Errorf("decode the analysis of %s: %w", caseID, err)
	}
	return &an, nil
}

// planHash binds an approval to exactly what would be sent: a changed
// draft needs a new confirm.
func planHash(caseID, draft string) string {
	sum := sha256.Sum256([]byte(caseID + "\x00" + draft))
	return hex.EncodeToString(sum[:8])
}

func (d *Daemon) observeLatency(id int64) {
	d.mu.Lock()
	t, ok := d.received[id]
	delete(d.received, id)
	d.mu.Unlock()
	if ok {
		d.metrics.noticeToSummary.Observe(d.now().Sub(t).Seconds())
	}
}

// messageIDOf reads the Message-ID header, for the store's dedup.
func messageIDOf(raw []byte) string {
	h, err := readHeader(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

func readHeader(raw []byte) (textproto.Header, error) {
	return textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
}
