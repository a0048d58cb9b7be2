package mail

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// SentFolder appends sent mail to a mailbox and looks it up, on one IMAP
// connection kept open between calls. A fresh login per mail costs the
// server a process and us about 10 ms, which is both the daemon's
// throughput limit and the width of the window in which a crash after an
// SMTP send goes unrecorded. Calls are serialised; a failed call drops the
// connection and is tried once more on a new one.
type SentFolder struct {
	cfg     IMAPConfig
	mailbox string

	mu sync.Mutex
	c  *imapclient.Client
}

// NewSentFolder returns a SentFolder for mailbox; it connects on first use.
func NewSentFolder(cfg IMAPConfig, mailbox string) *SentFolder {
	return &SentFolder{cfg: cfg, mailbox: mailbox}
}

// Append stores raw in the mailbox, flagged \Seen; the mailbox is created
// if missing.
func (s *SentFolder) Append(ctx context.Context, raw []byte) error {
	return s.do(ctx, func(c *imapclient.Client) error { return imapAppendSent(c, s.mailbox, raw) })
}

// Has reports whether the mailbox holds a message with messageID.
func (s *SentFolder) Has(ctx context.Context, messageID string) (bool, error) {
	var found bool
	err := s.do(ctx, func(c *imapclient.Client) error {
		var err error
		found, err = imapHasMessageID(c, s.mailbox, messageID)
		return err
	})
	return found, err
}

// Close logs out and closes the connection, if one is open.
func (s *SentFolder) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	logout := time.AfterFunc(5*time.Second, func() { s.c.Close() })
	defer logout.Stop()
	_ = s.c.Logout().Wait()
	err := s.c.Close()
	s.c = nil
	return err
}

func (s *SentFolder) do(ctx context.Context, op func(*imapclient.Client) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.cfg.withDefaults()
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		if s.c == nil {
			dial, cancel := context.WithTimeout(ctx, cfg.DialTimeout+imapCommandTimeout)
			c, stop, err := imapConnect(dial, cfg, nil)
			if err != nil {
				cancel()
				return fmt.Errorf("connect for %q: %w", s.mailbox, err)
			}
			stop() // before cancel: the connection outlives the dial context
			cancel()
			s.c = c
		}
		c := s.c
		// go-imap takes no context: close the connection on cancel or on
		// a server that stops answering.
		unwatch := context.AfterFunc(ctx, func() { c.Close() })
		guard := time.AfterFunc(imapCommandTimeout, func() { c.Close() })
		last = op(c)
		guard.Stop()
		unwatch()
		if last == nil {
			return nil
		}
		c.Close()
		s.c = nil
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", last, ctx.Err())
		}
	}
	return last
}
