package mail

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// AppendSent stores a reply we sent in mailbox (flagged \Seen, like a mail
// client's Sent folder) so that HasMessageID can later prove it went out. It
// uses its own short connection; the mailbox is created if missing.
// SentFolder does the same on one connection kept open.
func AppendSent(ctx context.Context, cfg IMAPConfig, mailbox string, raw []byte) error {
	return imapShortSession(ctx, cfg, func(c *imapclient.Client) error { return imapAppendSent(c, mailbox, raw) })
}

func imapAppendSent(c *imapclient.Client, mailbox string, raw []byte) error {
	err := imapRetryCreate(c, mailbox, func() error {
		cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			_, werr := cmd.Wait()
			return fmt.Errorf("%w (%w)", err, werr)
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("append %d bytes to %q: %w", len(raw), mailbox, err)
	}
	return nil
}

// HasMessageID reports whether mailbox holds a message whose Message-ID is
// exactly messageID (angle brackets optional). The outbox asks it before
// resending a reply whose send was not recorded, so that a crash between
// sending and recording never mails AWS twice. A mailbox that does not exist
// holds nothing: false, nil.
func HasMessageID(ctx context.Context, cfg IMAPConfig, mailbox, messageID string) (bool, error) {
	var found bool
	err := imapShortSession(ctx, cfg, func(c *imapclient.Client) error {
		var err error
		found, err = imapHasMessageID(c, mailbox, messageID)
		return err
	})
	return found, err
}

func imapHasMessageID(c *imapclient.Client, mailbox, messageID string) (bool, error) {
	want := imapNormalizeMsgID(messageID)
	if want == "<>" {
		return false, fmt.Errorf("has message-id in %q: empty Message-ID", mailbox)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		if imapHasCode(err, imap.ResponseCodeNonExistent) {
			return false, nil
		}
		return false, fmt.Errorf("examine %q: %w", mailbox, err)
	}
	// SEARCH HEADER is a substring match: it finds candidates, and the
	// header itself decides.
	crit := &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: want}}}
	data, err := c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return false, fmt.Errorf("search %q for Message-ID %s: %w", mailbox, want, err)
	}
	set, _ := data.All.(imap.UIDSet)
	uids, ok := set.Nums()
	if !ok {
		return false, fmt.Errorf("search %q for Message-ID %s: server returned an open range", mailbox, want)
	}
	if len(uids) == 0 {
		return false, nil // an empty UID set would kill the connection
	}
	found, err := imapAnyMessageID(c, imap.UIDSetNum(uids...), want)
	if err != nil {
		return false, fmt.Errorf("check Message-ID %s in %q: %w", want, mailbox, err)
	}
	return found, nil
}

// imapAnyMessageID fetches only the Message-ID header of the candidates and
// compares it exactly.
func imapAnyMessageID(c *imapclient.Client, set imap.UIDSet, want string) (bool, error) {
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		hdr, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.FindBodySection(section)))).ReadMIMEHeader()
		if err != nil && err != io.EOF {
			continue
		}
		for _, v := range hdr.Values("Message-Id") {
			if imapNormalizeMsgID(v) == want {
				return true, nil
			}
		}
	}
	return false, nil
}

// imapNormalizeMsgID trims space and adds the angle brackets, so "<a@b>" and
// "a@b" compare equal and "a@b" never matches inside "<xa@b>".
func imapNormalizeMsgID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	return "<" + id + ">"
}

// imapShortSession connects, runs op and logs out, all within
// imapCommandTimeout plus the dial time, and closes the connection when ctx
// ends.
func imapShortSession(ctx context.Context, cfg IMAPConfig, op func(*imapclient.Client) error) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+2*imapCommandTimeout)
	defer cancel()
	c, stop, err := imapConnect(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	defer stop()
	if err := op(c); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return err
	}
	// The work is done; a LOGOUT that fails changes nothing.
	logout := time.AfterFunc(5*time.Second, func() { c.Close() })
	defer logout.Stop()
	_ = c.Logout().Wait()
	return nil
}
