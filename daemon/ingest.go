package daemon

import (
	"context"
	"fmt"

	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/store"
)

// DeliverBatch stores a batch of fetched mails in one transaction, for
// mail.NewBatchWatcher. It returns nil only once every mail is committed
// (one fsync for the batch instead of one per mail, which is what bounded
// the backlog's intake); on error nothing is stored, the watcher marks
// nothing handled and offers the whole batch again, and the store's dedup
// (IMAP position, or Message-ID and content) drops what a previous,
// interrupted attempt stored.
func (d *Daemon) DeliverBatch(ctx context.Context, batch []mail.Incoming) error {
	if len(batch) == 0 {
		return nil
	}
	now := d.now()
	msgs := make([]store.Message, len(batch))
	for i, in := range batch {
		msgs[i] = store.Message{
			Mailbox: in.Mailbox, UIDValidity: in.UIDValidity, UID: in.UID,
			MessageID: messageIDOf(in.Raw), Raw: in.Raw, FetchedAt: now,
		}
	}
	added, err := d.store.AddMessages(ctx, msgs)
	if err != nil {
		if len(batch) == 1 {
			return fmt.Errorf("store message uid %d: %w", batch[0].UID, err)
		}
		return fmt.Errorf("store %d messages (uid %d to %d): %w", len(batch), batch[0].UID, batch[len(batch)-1].UID, err)
	}
	fresh, stored := 0, d.now()
	d.mu.Lock()
	for _, a := range added {
		if !a.Dup {
			d.received[a.ID] = stored
			fresh++
		}
	}
	d.mu.Unlock()
	for _, in := range batch {
		if in.Truncated {
			d.log.Warn("mail larger than the limit: stored its start; the whole mail stays on the IMAP server",
				"uid", in.UID, "kept_bytes", len(in.Raw))
		}
	}
	d.metrics.messages.Add(float64(fresh))
	wake(d.wakeCases)
	return nil
}
