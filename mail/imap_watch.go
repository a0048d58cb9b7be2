package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Watcher hands every message that reaches one IMAP mailbox to a deliver
// function exactly once per store, surviving disconnects, server restarts and
// UIDVALIDITY changes. Mail is only moved or flagged after deliver has stored
// it, so a crash at any point loses nothing; at worst a message is delivered
// again and the store's dedup drops it.
//
// A Watcher owns its connection and cursor from the single goroutine that
// calls Run; only Wake may be called from elsewhere.
type Watcher struct {
	// OnConnect, if set before Run, is called after each successful login
	// and SELECT, on Run's goroutine (the daemon sends READY=1 on the first).
	// It must not block.
	OnConnect func()
	// OnReconnect, if set before Run, is called with the error that ended the
	// previous attempt each time the watcher schedules a new connection
	// (for metrics). It must not block.
	OnReconnect func(err error)

	cfg     IMAPConfig
	cfgErr  error
	cursors CursorStore
	deliver imapDeliverFunc
	log     *slog.Logger
	wake    chan struct{}
	// batchBytes bounds the bytes handed to deliver at once (0: one
	// message at a time); markBatch is how many delivered UIDs are marked
	// handled together. Tests lower both.
	batchBytes, markBatch int

	// Test seams, left zero in production.
	backoffMin, backoffMax time.Duration
	onIdle                 func() // called each time IDLE is entered
}

// imapDeliverFunc is how the watcher hands over mail, whichever
// constructor was used: it reports how many of msgs, from the first on, are
// stored durably (all of them when err is nil). Only those are marked
// handled on the server.
type imapDeliverFunc func(ctx context.Context, msgs []Incoming) (stored int, err error)

// NewWatcher prepares a watcher that hands over one message at a time;
// nothing connects until Run. deliver must store the message durably before
// it returns nil: only then is the mail moved (or flagged \Seen) and the
// cursor advanced. An error from deliver means "try again later": the
// watcher stops at that message, reconnects with backoff and offers it
// again, so deliver should fail only for transient reasons and store mail it
// cannot make sense of (to be marked needs-human) rather than refuse it, or
// that message holds up the mailbox. deliver runs on Run's goroutine with
// Run's context. An invalid cfg is reported by Run.
//
// A backlog is faster with NewBatchWatcher, which stores a fetched batch
// with one commit instead of one per message.
func NewWatcher(cfg IMAPConfig, cursors CursorStore, deliver func(context.Context, Incoming) error, log *slog.Logger) *Watcher {
	one := func(ctx context.Context, msgs []Incoming) (int, error) {
		for i, in := range msgs {
			if err := deliver(ctx, in); err != nil {
				return i, err
			}
		}
		return len(msgs), nil
	}
	w := newWatcher(cfg, cursors, one, log)
	w.batchBytes = 0 // one at a time, as it arrives: nothing to gain by holding mail
	return w
}

// NewBatchWatcher is NewWatcher for a deliver that stores several messages
// at once, all or none: the messages of one FETCH (at most BatchSize, and at
// most 32 MiB of them unless one mail alone is larger) are handed over
// together. Only after deliver returned nil are they marked handled on the
// server (gathered over several batches into one MOVE or STORE) and the
// cursor advanced. An error means none of msgs is taken as stored: none is
// marked, and all of them are offered again later, so deliver must
// deduplicate (the store does). The other rules are NewWatcher's. msgs and their Raw are not
// used by the watcher after deliver returns.
func NewBatchWatcher(cfg IMAPConfig, cursors CursorStore, deliver func(ctx context.Context, msgs []Incoming) error, log *slog.Logger) *Watcher {
	all := func(ctx context.Context, msgs []Incoming) (int, error) {
		if err := deliver(ctx, msgs); err != nil {
			return 0, err
		}
		return len(msgs), nil
	}
	return newWatcher(cfg, cursors, all, log)
}

func newWatcher(cfg IMAPConfig, cursors CursorStore, deliver imapDeliverFunc, log *slog.Logger) *Watcher {
	cfg, err := cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{
		cfg:        cfg,
		cfgErr:     err,
		cursors:    cursors,
		deliver:    deliver,
		log:        log.With("imap", cfg.Address, "mailbox", cfg.Mailbox),
		wake:       make(chan struct{}, 1),
		backoffMin: imapBackoffMin,
		backoffMax: imapBackoffMax,
		batchBytes: imapBatchBytes,
		markBatch:  imapMarkBatch,
	}
}

// Wake asks the watcher to check the mailbox now instead of waiting for IDLE
// or the next poll. It never blocks; wakes that arrive while one is pending
// merge into it.
func (w *Watcher) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run watches the mailbox until ctx ends and then returns ctx.Err(). Server
// and delivery errors never end it: each one is logged, and the watcher
// reconnects after a jittered delay growing from 1s to 2 min, catching up on
// everything that arrived meanwhile. Only an invalid configuration makes it
// return early.
func (w *Watcher) Run(ctx context.Context) error {
	if w.cfgErr != nil {
		return w.cfgErr
	}
	bo := reconnectBackoff{min: w.backoffMin, max: w.backoffMax}
	for {
		err := w.session(ctx, &bo)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		delay := bo.next()
		w.log.Warn("imap: session ended; reconnecting", "err", err, "attempt", bo.attempts(), "delay", delay)
		if w.OnReconnect != nil {
			w.OnReconnect(err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// session is one connection's life: connect, select, then alternate between
// catching up and waiting for news until something fails. It always returns
// an error; Run decides what to do with it.
func (w *Watcher) session(ctx context.Context, bo *reconnectBackoff) error {
	newMail := make(chan struct{}, 1)
	opts := &imapclient.Options{
		// Runs on go-imap's reader goroutine: it must never block.
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	c, stop, err := imapConnect(ctx, w.cfg, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	defer stop()

	sel, err := imapSelect(c, w.cfg.Mailbox, w.cfg.DialTimeout+imapCommandTimeout)
	if err != nil {
		return err
	}
	caps := c.Caps()
	useIdle := w.cfg.IDLE && caps.Has(imap.CapIdle)
	w.log.Info("imap: connected", "user", w.cfg.Username, "tls", w.cfg.TLS, "idle", useIdle,
		"move", caps.Has(imap.CapMove), "uidvalidity", sel.UIDValidity, "messages", sel.NumMessages)
	if w.OnConnect != nil {
		w.OnConnect()
	}

	cur, err := w.loadCursor(ctx)
	if err != nil {
		return err
	}
	pass := &imapPass{w: w, c: c, caps: caps, sel: sel, cur: cur}
	for {
		if err := pass.catchUp(ctx); err != nil {
			return err
		}
		bo.reset()
		if useIdle {
			err = w.idleWait(ctx, c, newMail)
		} else {
			err = w.pollWait(ctx, c, newMail)
		}
		if err != nil {
			return err
		}
	}
}

// imapSelect selects the mailbox under a watchdog, since go-imap would wait
// for a silent server forever.
func imapSelect(c *imapclient.Client, mailbox string, timeout time.Duration) (*imap.SelectData, error) {
	guard := time.AfterFunc(timeout, func() { c.Close() })
	defer guard.Stop()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("select %q: %w", mailbox, err)
	}
	if sel.UIDValidity == 0 {
		// Without it no UID can be trusted across sessions (RFC 3501 2.3.1.1).
		return nil, fmt.Errorf("select %q: server sent no UIDVALIDITY", mailbox)
	}
	return sel, nil
}

// loadCursor reads the stored position once per connection; after that the
// session keeps it in memory and writes it through.
func (w *Watcher) loadCursor(ctx context.Context) (imapCursor, error) {
	v, last, err := w.cursors.Cursor(ctx, w.cfg.Mailbox)
	if err != nil {
		return imapCursor{}, fmt.Errorf("read cursor of %q: %w", w.cfg.Mailbox, err)
	}
	return imapCursor{validity: v, last: last}, nil
}

// idleWait sits in IDLE until the server reports new mail, Wake is called,
// IdleRefresh or PollInterval passes (servers drop idle clients after 30
// min) or the connection ends, then leaves IDLE so commands can be sent
// again.
func (w *Watcher) idleWait(ctx context.Context, c *imapclient.Client, newMail <-chan struct{}) error {
	start := time.AfterFunc(imapCommandTimeout, func() { c.Close() })
	idle, err := c.Idle() // blocks until the server's "+ idling"
	start.Stop()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if w.onIdle != nil {
		w.onIdle()
	}
	// Leave IDLE at least every poll interval too and look for ourselves:
	// a server may miss or delay the EXISTS for mail that lands just as
	// IDLE starts (go-imap's own in-memory server does), and a lost
	// notification must cost one poll interval, not a 25-minute refresh.
	refresh := time.NewTimer(min(w.cfg.IdleRefresh, w.cfg.PollInterval))
	defer refresh.Stop()
	var lost bool
	select {
	case <-newMail:
	case <-w.wake:
	case <-refresh.C:
	case <-ctx.Done():
	case <-c.Closed():
		lost = true
	}
	// A dead peer would leave DONE unanswered forever: bound the wait.
	guard := time.AfterFunc(imapDoneTimeout, func() { c.Close() })
	defer guard.Stop()
	closeErr := idle.Close()
	waitErr := idle.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case lost:
		return errors.New("connection closed by server while idling")
	case closeErr != nil:
		return fmt.Errorf("leave idle: %w", closeErr)
	case waitErr != nil:
		return fmt.Errorf("idle: %w", waitErr)
	}
	return nil
}

// pollWait is idleWait for servers without IDLE (or with it switched off):
// the next catch-up's UID SEARCH is itself the poll, and any EXISTS the
// server volunteers meanwhile cuts the wait short.
func (w *Watcher) pollWait(ctx context.Context, c *imapclient.Client, newMail <-chan struct{}) error {
	t := time.NewTimer(w.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-newMail:
	case <-w.wake:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.Closed():
		return errors.New("connection closed by server")
	}
	return nil
}
