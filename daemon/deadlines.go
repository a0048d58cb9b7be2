package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/store"
)

// checkDeadlines sends the reminders that are due and moves cases whose
// reply went out (or failed for good) on. It looks with a read-only view
// and opens a write transaction only for the cases that need one, since
// the store has one writer and a backlog may hold thousands of cases.
func (d *Daemon) checkDeadlines(ctx context.Context) error {
	var work []store.Case
	err := d.store.View(ctx, func(tx *store.Tx) error {
		// A case blocked after its approval (confirm-then-block) waits for
		// its reply in verified.
		cases, err := tx.Cases(store.CaseFilter{States: []abuse.State{abuse.StateAwaitingApproval, abuse.StateApproved, abuse.StateVerified}})
		if err != nil {
			return err
		}
		for _, c := range cases {
			due, err := d.needsWork(tx, c)
			if err != nil {
				return err
			}
			if due {
				work = append(work, c)
			}
		}
		return nil
	})
	if err != nil || len(work) == 0 {
		return err
	}
	return d.store.Update(ctx, func(tx *store.Tx) error {
		for _, c := range work {
			c, ok, err := tx.Case(c.ID) // as it is now, inside the transaction
			if err != nil || !ok {
				return err
			}
			switch c.State {
			case abuse.StateAwaitingApproval:
				err = d.remind(tx, c)
			case abuse.StateApproved, abuse.StateVerified:
				err = d.closeIfReplied(tx, c)
			}
			if err != nil {
				return fmt.Errorf("case %s: %w", c.ID, err)
			}
		}
		return nil
	})
}

// needsWork reports whether a case has a reminder due that was not sent,
// or is approved (its reply may have gone out).
func (d *Daemon) needsWork(tx *store.Tx, c store.Case) (bool, error) {
	if c.State == abuse.StateApproved || c.State == abuse.StateVerified {
		return true, nil
	}
	if c.ReplyBy.IsZero() {
		return false, nil
	}
	for _, lead := range d.cfg.Reminders {
		if d.now().Before(c.ReplyBy.Add(-lead)) {
			continue
		}
		if _, done, err := tx.Effect(fmt.Sprintf("%s:reminder:%s", c.ID, lead)); err != nil || !done {
			return !done, err
		}
	}
	return false, nil
}

// remind queues a reminder when a configured lead time before the reply
// deadline has come, each lead once (its key is recorded as an effect).
// When several have come at once (the daemon was down, or the notice was
// late), one reminder goes out for all of them.
func (d *Daemon) remind(tx *store.Tx, c store.Case) error {
	if c.ReplyBy.IsZero() {
		return nil
	}
	now := d.now()
	due := ""
	for _, lead := range d.cfg.Reminders {
		if now.Before(c.ReplyBy.Add(-lead)) {
			continue
		}
		key := fmt.Sprintf("%s:reminder:%s", c.ID, lead)
		first, err := tx.RecordEffect(store.Effect{Key: key, CaseID: c.ID, Kind: "reminder",
			Detail: fmt.Sprintf("%s before the deadline %s", lead, c.ReplyBy.UTC().Format(time.RFC3339))})
		if err != nil {
			return err
		}
		if first {
			due = key
		}
	}
	if due == "" {
		return nil
	}
	draft, err := d.draftReply(tx, c, "")
	if err != nil {
		return err
	}
	return d.queueSummary(tx, c, "reminder", due, draft, nil, c.State)
}

// closeIfReplied ends a case once its reply is sent, and hands it to a
// human when the reply was refused for good.
func (d *Daemon) closeIfReplied(tx *store.Tx, c store.Case) error {
	out, err := tx.Outbox(c.ID)
	if err != nil {
		return err
	}
	for _, m := range out {
		if m.Kind != "reply" {
			continue
		}
		switch m.Status {
		case store.OutSent:
			if err := tx.Transition(c.ID, abuse.StateReplied, "reply "+m.MessageID+" sent"); err != nil {
				return err
			}
			d.metrics.replies.Inc()
			return tx.Transition(c.ID, abuse.StateClosed, "replied to AWS")
		case store.OutFailed:
			return tx.Transition(c.ID, abuse.StateNeedsHuman, "the reply could not be sent: "+m.LastError)
		}
	}
	return nil
}
