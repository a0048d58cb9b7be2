package daemon

import (
	"context"
	"fmt"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/store"
)

// maintainBlocks runs the blocker's periodic pass (drift, restore, expiry)
// every MaintainEvery, from the case loop, and mails the admins what it
// found: a block is never repaired or lifted without them hearing of it.
func (d *Daemon) maintainBlocks(ctx context.Context) error {
	if d.cfg.Blocker == nil || d.now().Sub(d.lastMaintain) < d.cfg.MaintainEvery {
		return nil
	}
	d.lastMaintain = d.now()
	m, err := d.cfg.Blocker.Maintain(ctx, d.now())
	if err != nil {
		// Partly done is still worth reporting; the next pass tries again.
		d.log.Warn("block maintenance incomplete", "err", err)
	}
	d.metrics.blockDrift.Add(float64(len(m.Drift)))
	lines := m.Lines()
	if err != nil {
		lines = append(lines, "the pass did not finish: "+err.Error())
	}
	if len(lines) == 0 {
		return nil
	}
	d.log.Warn("blocks need attention", "drift", len(m.Drift), "expired", len(m.Expired.Actions), "extended", len(m.Extended))
	return d.store.Update(ctx, func(tx *store.Tx) error {
		key := fmt.Sprintf("maintenance:%d", d.now().UnixNano())
		raw, msgID, err := mail.ComposeSummary(mail.Summary{
			From: d.cfg.From, To: d.cfg.SummaryTo, ReplyTo: d.cfg.ReplyTo, Hostname: d.cfg.Hostname,
			Token: fmt.Sprintf("maintenance.%d", d.now().UnixNano()), Kind: mail.KindUrgent,
			Notice:   abuse.Notice{Subject: "blocks in place need attention"},
			State:    "block maintenance: drift, restores and expiries",
			Problems: append(lines, "`abuse-responder blocks` lists what is in place; `abuse-responder unblock CASE` lifts a case's blocks"),
			Now:      d.now(),
		})
		if err != nil {
			return fmt.Errorf("compose the maintenance report: %w", err)
		}
		_, err = tx.Enqueue(store.OutMail{Key: key, Kind: "alert", MessageID: msgID,
			From: d.cfg.From.Address, To: addresses(d.cfg.SummaryTo), Raw: raw})
		return err
	})
}
