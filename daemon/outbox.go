package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/store"
)

// outboxLoop sends queued mail. Each mail was composed, with its final
// Message-ID, before it was queued; here it is only sent and marked.
func (d *Daemon) outboxLoop(ctx context.Context) error {
	return d.loop(ctx, "outbox", d.wakeOutbox, d.sendDue)
}

// outboxBatch is how many due mails the outbox takes at once. Their store
// writes are grouped per batch (sendBatch), and DueMail's cost is paid once
// per batch.
const outboxBatch = 50

// sendDue sends everything that is due, in batches, until nothing is:
// a backlog must not wait a tick per batch.
func (d *Daemon) sendDue(ctx context.Context) error {
	for {
		due, err := d.store.DueMail(ctx, d.now(), outboxBatch)
		if err != nil {
			return fmt.Errorf("due mail: %w", err)
		}
		sentReply, err := d.sendBatch(ctx, due)
		if sentReply {
			d.deadlineWake.Store(true)
			wake(d.wakeCases) // the case loop closes replied cases
		}
		if err != nil {
			return err
		}
		if len(due) < outboxBatch || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// sendBatch sends due mails, one at a time, in order. A mail that was
// attempted before (the daemon may have died after the SMTP server took it)
// is first looked up in the Sent folder, so that a restart does not send it
// twice. The one window left is between the SMTP server's acceptance and the
// copy to Sent: README.md, "Exactly once".
//
// The store writes are grouped, since one commit per write held a backlog
// to a few hundred mails a second: one commit counts the attempt of every
// mail about to be sent (before any is sent), and with a Sent folder one
// commit at the end marks every sent mail sent. That delay adds nothing to
// the window: a mail is in Sent before its mark is due, and a restart finds
// it there. Without a Sent folder nothing else records a send, so each mail
// is marked sent as soon as the server took it, as before.
func (d *Daemon) sendBatch(ctx context.Context, due []store.OutMail) (sentReply bool, err error) {
	var todo []store.OutMail
	for _, m := range due {
		if m.Attempts > 0 && d.cfg.SentMailbox != "" {
			settled, err := d.settleAttempted(ctx, m)
			if err != nil {
				return sentReply, err
			}
			if settled {
				sentReply = sentReply || m.Kind == "reply"
				continue
			}
		}
		todo = append(todo, m)
	}
	// Count the attempts before sending: after a crash the next run knows
	// these mails may have left.
	retries := make([]store.Retry, len(todo))
	for i, m := range todo {
		retries[i] = store.Retry{Key: m.Key, ErrText: "sending", Next: d.now().Add(d.backoff(m.Attempts + 1))}
	}
	if err := d.store.MarkRetries(ctx, retries); err != nil {
		return sentReply, fmt.Errorf("count the send attempts: %w", err)
	}
	var sent []store.OutMail // taken by the server and copied to Sent, not yet marked
	defer func() {
		// The server has these mails: record that even when we are being
		// stopped, or a clean stop would send them again after the
		// restart. Not after a simulated crash: a killed process records
		// nothing, and the Sent folder must cover for it.
		if len(sent) > 0 && !errors.Is(err, errCrash) {
			err = errors.Join(err, d.markSent(ctx, sent))
		}
	}()
	for _, m := range todo {
		if ctx.Err() != nil {
			// Stopping: what is left was counted as attempted and will be
			// looked up in Sent, then sent, after the restart.
			return sentReply, ctx.Err()
		}
		ok, err := d.sendOne(ctx, m)
		if err != nil {
			return sentReply, err
		}
		sentReply = sentReply || m.Kind == "reply"
		if !ok {
			continue
		}
		if d.cfg.SentMailbox == "" {
			if err := d.markSent(ctx, []store.OutMail{m}); err != nil {
				return sentReply, err
			}
			continue
		}
		sent = append(sent, m)
	}
	return sentReply, nil
}

// settleAttempted looks for a mail attempted before in the Sent folder.
// settled is true when nothing is left to do for now: it was found there
// (and is marked sent), or the folder could not be searched (and the mail
// waits for a later try rather than risk a second copy).
func (d *Daemon) settleAttempted(ctx context.Context, m store.OutMail) (settled bool, err error) {
	log := d.log.With("case", m.CaseID, "mail", m.Key, "message_id", m.MessageID)
	found, err := d.sent.Has(ctx, m.MessageID)
	if err != nil {
		log.Warn("cannot check the Sent folder; retrying later rather than risk a second reply", "err", err)
		return true, d.store.MarkRetry(ctx, m.Key, "check Sent folder: "+err.Error(), d.now().Add(d.backoff(m.Attempts)))
	}
	if !found {
		return false, nil
	}
	log.Info("mail found in the Sent folder: it went out before a restart; not sending again")
	return true, d.store.MarkSent(ctx, m.Key, d.now())
}

// sendOne sends one mail whose attempt is already counted, and copies it to
// the Sent folder. ok reports that the SMTP server took it; a refusal is
// recorded here (failed for good, or due again after a backoff).
func (d *Daemon) sendOne(ctx context.Context, m store.OutMail) (ok bool, err error) {
	log := d.log.With("case", m.CaseID, "mail", m.Key, "message_id", m.MessageID)
	// A send in flight is finished even when the daemon is asked to stop
	// (the sender's own timeout bounds it): cutting it short could leave
	// the server holding a mail we do not know was sent.
	if err := d.sender.Send(context.WithoutCancel(ctx), m.From, m.To, m.Raw); err != nil {
		if mail.IsPermanent(err) {
			log.Error("mail refused for good", "err", err)
			return false, d.store.MarkFailed(ctx, m.Key, err.Error())
		}
		log.Warn("mail not sent; will retry", "err", err, "attempt", m.Attempts+1)
		return false, d.store.MarkRetry(ctx, m.Key, err.Error(), d.now().Add(d.backoff(m.Attempts+1)))
	}
	if err := d.crashPoint("after-smtp-send"); err != nil {
		return false, err
	}
	if d.cfg.SentMailbox != "" {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := d.sent.Append(actx, m.Raw)
		cancel()
		if err != nil {
			log.Warn("mail sent but not copied to the Sent folder", "err", err)
		}
	}
	if err := d.crashPoint("before-mark-sent"); err != nil {
		return false, err
	}
	return true, nil
}

// markSent records that the SMTP server took ms, with one commit, even
// when ctx is cancelled (the daemon is stopping).
func (d *Daemon) markSent(ctx context.Context, ms []store.OutMail) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m.Key
	}
	if err := d.store.MarkSentAll(ctx, keys, d.now()); err != nil {
		return fmt.Errorf("mark %d mails sent: %w", len(ms), err)
	}
	for _, m := range ms {
		d.log.Info("mail sent", "case", m.CaseID, "mail", m.Key, "message_id", m.MessageID, "kind", m.Kind)
		d.metrics.mailSent.WithLabelValues(m.Kind).Inc()
	}
	return nil
}

// backoff grows from RetryBase to RetryMax, with jitter so that many
// queued mails do not retry in step.
func (d *Daemon) backoff(attempt int) time.Duration {
	b := d.cfg.RetryBase
	for i := 1; i < attempt && b < d.cfg.RetryMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.RetryMax)
	return b/2 + rand.N(b/2+1)
}
