package daemon

import (
	"context"
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

// sendDue sends everything that is due, in batches, until nothing is:
// a backlog must not wait a tick per batch.
func (d *Daemon) sendDue(ctx context.Context) error {
	const batch = 20
	for {
		due, err := d.store.DueMail(ctx, d.now(), batch)
		if err != nil {
			return fmt.Errorf("due mail: %w", err)
		}
		sentReply := false
		for _, m := range due {
			if err := d.sendOne(ctx, m); err != nil {
				return err
			}
			sentReply = sentReply || m.Kind == "reply"
		}
		if sentReply {
			d.deadlineWake.Store(true)
			wake(d.wakeCases) // the case loop closes replied cases
		}
		if len(due) < batch || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// sendOne sends one queued mail and copies it to the Sent folder. A mail
// that was attempted before (the daemon may have died after the SMTP server
// took it) is first looked up there, so that a restart does not send it
// twice. The one window left is between the SMTP server's acceptance and
// the copy: README.md, "Exactly once".
func (d *Daemon) sendOne(ctx context.Context, m store.OutMail) error {
	log := d.log.With("case", m.CaseID, "mail", m.Key, "message_id", m.MessageID)
	if m.Attempts > 0 && d.cfg.SentMailbox != "" {
		found, err := d.sent.Has(ctx, m.MessageID)
		if err != nil {
			log.Warn("cannot check the Sent folder; retrying later rather than risk a second reply", "err", err)
			return d.store.MarkRetry(ctx, m.Key, "check Sent folder: "+err.Error(), d.now().Add(d.backoff(m.Attempts)))
		}
		if found {
			log.Info("mail found in the Sent folder: it went out before a restart; not sending again")
			return d.store.MarkSent(ctx, m.Key, d.now())
		}
	}
	// Count the attempt before sending: after a crash the next run knows
	// this mail may have left.
	if err := d.store.MarkRetry(ctx, m.Key, "sending", d.now().Add(d.backoff(m.Attempts+1))); err != nil {
		return err
	}
	// A send in flight is finished even when the daemon is asked to stop
	// (the sender's own timeout bounds it): cutting it short could leave
	// the server holding a mail we do not know was sent.
	if err := d.sender.Send(context.WithoutCancel(ctx), m.From, m.To, m.Raw); err != nil {
		if mail.IsPermanent(err) {
			log.Error("mail refused for good", "err", err)
			return d.store.MarkFailed(ctx, m.Key, err.Error())
		}
		log.Warn("mail not sent; will retry", "err", err, "attempt", m.Attempts+1)
		return d.store.MarkRetry(ctx, m.Key, err.Error(), d.now().Add(d.backoff(m.Attempts+1)))
	}
	if err := d.crashPoint("after-smtp-send"); err != nil {
		return err
	}
	// The server has the mail: record that even when we are being
	// stopped, or a clean stop would send it again after the restart.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if d.cfg.SentMailbox != "" {
		if err := d.sent.Append(ctx, m.Raw); err != nil {
			log.Warn("mail sent but not copied to the Sent folder", "err", err)
		}
	}
	if err := d.crashPoint("before-mark-sent"); err != nil {
		return err
	}
	if err := d.store.MarkSent(ctx, m.Key, d.now()); err != nil {
		return err
	}
	log.Info("mail sent", "kind", m.Kind)
	d.metrics.mailSent.WithLabelValues(m.Kind).Inc()
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
