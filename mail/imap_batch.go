package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapCursor is the watcher's position in the mailbox, as kept in the
// CursorStore: every UID up to last under this validity is handled.
type imapCursor struct {
	validity, last uint32
}

// imapPass carries one connection's state through the catch-up rounds. It is
// used only on Run's goroutine.
type imapPass struct {
	w    *Watcher
	c    *imapclient.Client
	caps imap.CapSet
	sel  *imap.SelectData
	cur  imapCursor

	delivering time.Duration // time spent in deliver during the current batch, for the log
}

// catchUp delivers everything above the cursor, or rescans the whole mailbox
// when the server's UIDVALIDITY is not the stored one (first run, or the
// mailbox was rebuilt and old UIDs mean nothing any more).
func (p *imapPass) catchUp(ctx context.Context) error {
	if p.cur.validity != p.sel.UIDValidity {
		return p.rescan(ctx)
	}
	// "UID n:*" always matches the highest UID even when it is below n.
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: imap.UID(p.cur.last + 1), Stop: 0}}}}
	uids, err := p.search(crit)
	if err != nil {
		return err
	}
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return uint32(u) <= p.cur.last })
	return p.deliverAll(ctx, uids, true)
}

// rescan handles a mailbox whose UIDs cannot be trusted against the cursor.
// What is still unhandled is decided by state on the server: with a processed
// mailbox, whatever is still in the watched one; without, whatever lacks
// \Seen. Messages delivered before are delivered again only if they look
// unhandled, and the store dedups those. The new validity is stored last, so
// an interrupted rescan simply runs again.
func (p *imapPass) rescan(ctx context.Context) error {
	log := p.w.log.With("uidvalidity", p.sel.UIDValidity)
	if p.cur.validity == 0 {
		log.Info("imap: no cursor for this mailbox yet; scanning it")
	} else {
		log.Warn("imap: UIDVALIDITY changed; rescanning the mailbox", "old_uidvalidity", p.cur.validity)
	}
	// Everything that exists now is covered by this rescan; mail arriving
	// later gets a higher UID and is found by the next catch-up.
	baseline := uint32(p.sel.UIDNext)
	if baseline > 0 {
		baseline--
	} else {
		all, err := p.search(&imap.SearchCriteria{})
		if err != nil {
			return err
		}
		if len(all) > 0 {
			baseline = uint32(all[len(all)-1])
		}
	}
	crit := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}
	if p.w.cfg.ProcessedMailbox == "" {
		crit.NotFlag = append(crit.NotFlag, imap.FlagSeen)
	}
	uids, err := p.search(crit)
	if err != nil {
		return err
	}
	if err := p.deliverAll(ctx, uids, false); err != nil {
		return err
	}
	last := baseline
	if n := len(uids); n > 0 && uint32(uids[n-1]) > last {
		last = uint32(uids[n-1])
	}
	if err := p.setCursor(ctx, imapCursor{validity: p.sel.UIDValidity, last: last}); err != nil {
		return err
	}
	log.Info("imap: rescan done", "unhandled", len(uids), "last_uid", last)
	return nil
}

// search runs UID SEARCH and returns the UIDs in ascending order.
func (p *imapPass) search(crit *imap.SearchCriteria) ([]imap.UID, error) {
	guard := time.AfterFunc(imapCommandTimeout, func() { p.c.Close() })
	defer guard.Stop()
	data, err := p.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("uid search in %q: %w", p.w.cfg.Mailbox, err)
	}
	set, _ := data.All.(imap.UIDSet)
	uids, ok := set.Nums()
	if !ok {
		return nil, fmt.Errorf("uid search in %q: server returned an open range %v", p.w.cfg.Mailbox, set)
	}
	slices.Sort(uids)
	return uids, nil
}

// deliverAll works through uids in batches of BatchSize, so a backlog of
// thousands never sits in memory. Delivered mail is marked handled (and,
// when advance is set, the cursor moved past the longest run of handled
// UIDs) once markBatch UIDs have been delivered, at the end, and before any
// error is returned: never before deliver stored it. Marking in large groups
// matters because Dovecot's cost for a MOVE grows with the size of the
// mailbox, not only with the UIDs moved: with 10,000 mails in INBOX a MOVE
// of 256 took as long as one of 1,024 (~250 ms). The first error stops it:
// nothing behind a message that failed is skipped.
func (p *imapPass) deliverAll(ctx context.Context, uids []imap.UID, advance bool) error {
	var (
		pending []imap.UID // delivered, not yet marked
		doneTo  uint32     // every UID up to here is delivered (or gone)
	)
	mark := func() error {
		if len(pending) > 0 {
			t0 := time.Now()
			if err := p.markHandled(pending); err != nil {
				return err
			}
			p.w.log.Info("imap: marked handled", "uids", len(pending),
				"first_uid", uint32(pending[0]), "last_uid", uint32(pending[len(pending)-1]),
				"took", time.Since(t0).Round(time.Microsecond))
			pending = nil
		}
		if advance && doneTo > p.cur.last {
			return p.setCursor(ctx, imapCursor{validity: p.cur.validity, last: doneTo})
		}
		return nil
	}
	for len(uids) > 0 {
		batch := uids[:min(len(uids), p.w.cfg.BatchSize)]
		uids = uids[len(batch):]
		t0 := time.Now()
		p.delivering = 0
		handled, complete, err := p.fetchAndDeliver(ctx, batch)
		pending = append(pending, handled...)
		// Batches before this one were complete, or we would have stopped.
		if last := imapDonePrefix(batch, handled, complete); last > doneTo {
			doneTo = last
		}
		// The split of the time shows where a slow backlog waits: on the
		// server (fetch) or on the store (deliver).
		p.w.log.Info("imap: batch", "uids", len(batch), "delivered", len(handled),
			"first_uid", uint32(batch[0]), "last_uid", uint32(batch[len(batch)-1]),
			"fetch", (time.Since(t0) - p.delivering).Round(time.Microsecond), "deliver", p.delivering.Round(time.Microsecond))
		if err != nil || len(uids) == 0 || len(pending) >= p.w.markBatch {
			if merr := mark(); merr != nil {
				return errors.Join(err, merr)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// imapDonePrefix returns the highest UID of batch (ascending) below which
// everything is handled. A batch fetched completely is done as a whole: the
// UIDs the server did not return were expunged by someone else meanwhile.
func imapDonePrefix(batch, handled []imap.UID, complete bool) uint32 {
	if complete {
		return uint32(batch[len(batch)-1])
	}
	var last uint32
	for _, u := range batch {
		if !slices.Contains(handled, u) {
			break
		}
		last = uint32(u)
	}
	return last
}

// fetchAndDeliver streams one batch with BODY.PEEK[] (reading must not set
// \Seen: that is our "handled" mark) and hands the messages to deliver in
// groups of at most batchBytes (one by one when it is 0), so a batch of
// large mails never sits in memory whole. It stops at the first failure;
// handled lists the UIDs deliver stored, and complete reports whether the
// whole FETCH went through.
func (p *imapPass) fetchAndDeliver(ctx context.Context, batch []imap.UID) (handled []imap.UID, complete bool, err error) {
	body := &imap.FetchItemBodySection{Peek: true}
	fetch := p.c.Fetch(imap.UIDSetNum(batch...), &imap.FetchOptions{
		UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{body},
	})
	// The watchdog runs only while we wait on the server, not during deliver.
	guard := time.AfterFunc(imapCommandTimeout, func() { p.c.Close() })
	defer guard.Stop()
	closed := false
	defer func() {
		if !closed {
			guard.Reset(imapCommandTimeout)
			fetch.Close() // drain the rest; the error that stopped us is the one to report
		}
	}()
	var (
		group      []Incoming
		groupBytes int
	)
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		t0 := time.Now()
		n, err := p.w.deliver(ctx, group)
		p.delivering += time.Since(t0)
		for _, in := range group[:n] {
			handled = append(handled, imap.UID(in.UID))
		}
		if err != nil {
			first, last := group[0].UID, group[len(group)-1].UID
			if len(group) == 1 {
				return fmt.Errorf("deliver uid %d of %q: %w", first, p.w.cfg.Mailbox, err)
			}
			return fmt.Errorf("deliver %d messages (uid %d to %d) of %q: %w", len(group), first, last, p.w.cfg.Mailbox, err)
		}
		// A new slice, not group[:0]: deliver may still hold the old one's
		// elements, and their bodies must be free to go.
		group, groupBytes = nil, 0
		return nil
	}
	for {
		guard.Reset(imapCommandTimeout)
		msg := fetch.Next()
		if msg == nil {
			break
		}
		in, err := imapReadMessage(msg)
		guard.Stop()
		if err != nil {
			return handled, false, fmt.Errorf("uid fetch in %q: %w", p.w.cfg.Mailbox, err)
		}
		if !slices.Contains(batch, imap.UID(in.UID)) {
			continue // not ours to judge: only what we asked for is delivered
		}
		in.Mailbox, in.UIDValidity = p.w.cfg.Mailbox, p.sel.UIDValidity
		if len(group) > 0 && groupBytes+len(in.Raw) > p.w.batchBytes {
			if err := flush(); err != nil {
				return handled, false, err
			}
		}
		group = append(group, in)
		groupBytes += len(in.Raw)
		if p.w.batchBytes == 0 {
			if err := flush(); err != nil {
				return handled, false, err
			}
		}
	}
	guard.Reset(imapCommandTimeout)
	closed = true
	if err := fetch.Close(); err != nil {
		return handled, false, fmt.Errorf("uid fetch in %q: %w", p.w.cfg.Mailbox, err)
	}
	// Only once the FETCH is complete: a batch that failed on the wire is
	// not delivered in part, and it comes again whole.
	guard.Stop()
	if err := flush(); err != nil {
		return handled, false, err
	}
	return handled, true, nil
}

// imapReadMessage collects one FETCH response; the body literal must be read
// before the next item, as go-imap streams it off the socket.
func imapReadMessage(msg *imapclient.FetchMessageData) (Incoming, error) {
	var in Incoming
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			in.UID = uint32(it.UID)
		case imapclient.FetchItemDataInternalDate:
			in.InternalDate = it.Time
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				continue
			}
			raw, err := io.ReadAll(io.LimitReader(it.Literal, MaxMessageBytes+1))
			if err != nil {
				return in, fmt.Errorf("read body of message %d: %w", msg.SeqNum, err)
			}
			if len(raw) > MaxMessageBytes {
				// Keep the start for the record and the admins; skip the
				// rest off the wire instead of holding it.
				raw, in.Truncated = raw[:MaxMessageBytes], true
				if _, err := io.Copy(io.Discard, it.Literal); err != nil {
					return in, fmt.Errorf("skip the rest of message %d: %w", msg.SeqNum, err)
				}
			}
			in.Raw = raw
		}
	}
	if in.UID == 0 {
		return in, fmt.Errorf("message %d: server sent no UID", msg.SeqNum)
	}
	if in.Raw == nil {
		return in, fmt.Errorf("uid %d: server sent no body", in.UID)
	}
	return in, nil
}

// setCursor writes the position through to the store, then keeps it.
func (p *imapPass) setCursor(ctx context.Context, cur imapCursor) error {
	if err := p.w.cursors.SetCursor(ctx, p.w.cfg.Mailbox, cur.validity, cur.last); err != nil {
		return fmt.Errorf("store cursor %d:%d of %q: %w", cur.validity, cur.last, p.w.cfg.Mailbox, err)
	}
	p.cur = cur
	return nil
}

// markHandled records on the server that uids were delivered: moved to the
// processed mailbox, or flagged \Seen when there is none. This mark is what a
// UIDVALIDITY rescan trusts, so it is set only after deliver succeeded.
func (p *imapPass) markHandled(uids []imap.UID) error {
	guard := time.AfterFunc(imapCommandTimeout, func() { p.c.Close() })
	defer guard.Stop()
	set := imap.UIDSetNum(uids...)
	dest := p.w.cfg.ProcessedMailbox
	if dest == "" {
		err := p.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
		if err != nil {
			return fmt.Errorf("flag %v \\Seen in %q: %w", set, p.w.cfg.Mailbox, err)
		}
		return nil
	}
	err := imapRetryCreate(p.c, dest, func() error {
		if p.caps.Has(imap.CapMove) {
			_, err := p.c.Move(set, dest).Wait()
			return err
		}
		// Not go-imap's Move fallback: it pipelines COPY, STORE \Deleted and
		// EXPUNGE without waiting, so a COPY refused with TRYCREATE would still
		// expunge the originals. Copy first, and only on success mark them.
		_, err := p.c.Copy(set, dest).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("move %v from %q to %q: %w", set, p.w.cfg.Mailbox, dest, err)
	}
	if p.caps.Has(imap.CapMove) {
		return nil
	}
	return p.expungeCopied(set, dest)
}

// expungeCopied removes messages already copied to dest from the watched
// mailbox. Without UIDPLUS there is no way to expunge only these (a plain
// EXPUNGE would take anything a person marked \Deleted with them), so they stay
// flagged \Deleted \Seen for the user's own client to expunge; a rescan skips
// \Deleted mail.
func (p *imapPass) expungeCopied(set imap.UIDSet, dest string) error {
	flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted, imap.FlagSeen}}
	if err := p.c.Store(set, flags, nil).Close(); err != nil {
		return fmt.Errorf("flag %v \\Deleted in %q after copy to %q: %w", set, p.w.cfg.Mailbox, dest, err)
	}
	if !p.caps.Has(imap.CapUIDPlus) {
		return nil
	}
	if err := p.c.UIDExpunge(set).Close(); err != nil {
		return fmt.Errorf("uid expunge %v in %q after copy to %q: %w", set, p.w.cfg.Mailbox, dest, err)
	}
	return nil
}

// imapRetryCreate runs op, and if the server answers TRYCREATE (the target
// mailbox does not exist yet), creates mailbox and runs op once more. Creating
// on demand spares the operator a manual step for "Abuse/Done" or "Sent".
func imapRetryCreate(c *imapclient.Client, mailbox string, op func() error) error {
	err := op()
	if !imapHasCode(err, imap.ResponseCodeTryCreate) {
		return err
	}
	if cerr := c.Create(mailbox, nil).Wait(); cerr != nil && !imapHasCode(cerr, imap.ResponseCodeAlreadyExists) {
		return fmt.Errorf("create %q: %w (after: %w)", mailbox, cerr, err)
	}
	return op()
}
