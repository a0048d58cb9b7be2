package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

// ErrRefused wraps every reason an approval is not acted on.
var ErrRefused = errors.New("approval refused")

// handleApproval acts on a reply that passed approval.Evaluate: it must
// match the case's current plan and be the first one (single use).
func (d *Daemon) handleApproval(ctx context.Context, m store.Message, dec approval.Decision, log *slog.Logger) error {
	log = log.With("case", dec.CaseID, "approver", dec.Approver, "verb", dec.Verb)
	var refused error
	err := d.store.Update(ctx, func(tx *store.Tx) error {
		refused = d.decide(tx, dec, "mail "+dec.MessageID)
		if refused != nil {
			return tx.SetMessageStatus(m.ID, store.StatusIgnored, dec.CaseID, refused.Error())
		}
		return tx.SetMessageStatus(m.ID, store.StatusHandled, dec.CaseID, dec.Verb+" by "+dec.Approver)
	})
	if err != nil {
		return err
	}
	if refused != nil {
		d.metrics.approvalsRefused.Inc()
		log.Warn("approval not acted on", "reason", refused)
		return nil
	}
	log.Info("approval recorded")
	return nil
}

// decide records a confirm or reject for a case inside tx. It is shared by
// mail approvals and the approve/reject commands, so both obey the same
// rules: the case waits for approval, the plan is the current one, and the
// decision is the first.
func (d *Daemon) decide(tx *store.Tx, dec approval.Decision, via string) error {
	c, ok, err := tx.Case(dec.CaseID)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		return fmt.Errorf("%w: no case %s", ErrRefused, dec.CaseID)
	case c.State != abuse.StateAwaitingApproval:
		return fmt.Errorf("%w: case %s is %s, not awaiting approval", ErrRefused, c.ID, c.State)
	case dec.PlanHash != c.PlanHash:
		return fmt.Errorf("%w: the token is for an older plan of case %s", ErrRefused, c.ID)
	}
	first, err := tx.RecordEffect(store.Effect{
		Key: c.ID + ":approval:" + c.PlanHash, CaseID: c.ID, Kind: "approval",
		Detail: fmt.Sprintf("%s by %s via %s", dec.Verb, dec.Approver, via),
	})
	if err != nil {
		return err
	}
	if !first {
		return fmt.Errorf("%w: case %s was decided already (an approval is used once)", ErrRefused, c.ID)
	}
	c.Approver, c.AdminNote = dec.Approver, dec.Note
	if err := tx.SaveCase(c); err != nil {
		return err
	}
	if dec.Verb == "reject" {
		return tx.Transition(c.ID, abuse.StateRejected, "rejected by "+dec.Approver+" via "+via)
	}
	if err := tx.Transition(c.ID, abuse.StateApproved, "confirmed by "+dec.Approver+" via "+via); err != nil {
		return err
	}
	if d.cfg.Mode == ModeConfirmThenBlock {
		// The approved plan is applied next by the case loop
		// (advanceBlocking), outside this transaction; the reply follows it.
		return nil
	}
	return d.queueReply(tx, c)
}

// queueReply composes the reply to AWS with its final Message-ID and
// queues it once (key "<case>:reply"). It goes only to an address in
// notices.senders: a forger never gets our mail.
func (d *Daemon) queueReply(tx *store.Tx, c store.Case) error {
	n := c.Notice
	to := n.ReplyTo
	if to == "" {
		to = n.Sender
	}
	if !slices.Contains(d.cfg.Senders, to) {
		return tx.Transition(c.ID, abuse.StateNeedsHuman,
			fmt.Sprintf("reply address %s is not in notices.senders: not answered automatically", to))
	}
	body, err := d.draftReply(tx, c, c.AdminNote)
	if err != nil {
		return err
	}
	raw, msgID, err := mail.ComposeReply(mail.Reply{
		From: d.cfg.From, To: &netmail.Address{Address: to}, Hostname: d.cfg.Hostname,
		Notice: n, Body: body, Now: d.now(),
	})
	if err != nil {
		return fmt.Errorf("compose reply for %s: %w", c.ID, err)
	}
	if _, err := tx.Enqueue(store.OutMail{Key: c.ID + ":reply", CaseID: c.ID, Kind: "reply",
		MessageID: msgID, From: d.cfg.From.Address, To: []string{to}, Raw: raw}); err != nil {
		return err
	}
	return nil
}

// Decide is the approve and reject commands: the same rules as a mail
// approval, recorded as coming from the shell.
func (d *Daemon) Decide(ctx context.Context, caseID, verb, who, note string) error {
	return d.store.Update(ctx, func(tx *store.Tx) error {
		c, ok, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no case %s", ErrRefused, caseID)
		}
		return d.decide(tx, approval.Decision{CaseID: caseID, PlanHash: c.PlanHash, Verb: verb,
			Note: note, Approver: who}, "the shell")
	})
}
