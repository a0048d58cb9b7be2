package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The bench's own IMAP client: it plays the MX (APPEND) and measures
// Dovecot's raw fetch rate. go-imap waits for a silent server forever, so
// every command runs under a guard that closes the connection.

func dialIMAP(addr string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	err = guarded(c, 30*time.Second, func() error { return c.Login(benchUser, benchPassword).Wait() })
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	return c, nil
}

// guarded runs op, closing c if it takes longer than d.
func guarded(c *imapclient.Client, d time.Duration, op func() error) error {
	t := time.AfterFunc(d, func() { c.Close() })
	err := op()
	if !t.Stop() {
		return fmt.Errorf("imap command timed out after %s (%v)", d, err)
	}
	return err
}

func appendMsg(c *imapclient.Client, mailbox string, raw []byte) error {
	return guarded(c, 30*time.Second, func() error {
		cmd := c.Append(mailbox, int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
}

func mailboxCount(c *imapclient.Client, mailbox string) (int, error) {
	var n int
	err := guarded(c, 5*time.Minute, func() error {
		st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return err
		}
		n = int(*st.NumMessages)
		return nil
	})
	return n, err
}

// rawFetch is "UID FETCH 1:* (UID BODY.PEEK[])" on the selected mailbox,
// streamed with Next(): each body is read into memory, as the watcher
// does, and dropped.
func rawFetch(c *imapclient.Client) (msgs int, bytes int64, elapsed time.Duration, err error) {
	start := time.Now()
	err = guarded(c, 10*time.Minute, func() error {
		cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
			UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			got := false
			for item := msg.Next(); item != nil; item = msg.Next() {
				if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
					raw, err := io.ReadAll(b.Literal)
					if err != nil {
						cmd.Close()
						return err
					}
					bytes += int64(len(raw))
					got = true
				}
			}
			if got {
				msgs++
			}
		}
		return cmd.Close()
	})
	return msgs, bytes, time.Since(start), err
}

// idleProbe measures Dovecot alone: n times, APPEND a small mail to a
// mailbox of its own and time until an IDLE client on that mailbox gets
// the EXISTS. The watcher is not involved.
func idleProbe(ctx context.Context, addr string, n int, gap time.Duration) ([]time.Duration, error) {
	const box = "IdleProbe"
	app, err := dialIMAP(addr)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	err = guarded(app, 30*time.Second, func() error { return app.Create(box, nil).Wait() })
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", box, err)
	}
	exists := make(chan struct{}, 16)
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case exists <- struct{}{}:
					default:
					}
				}
			},
		},
	})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	err = guarded(c, 30*time.Second, func() error {
		if err := c.Login(benchUser, benchPassword).Wait(); err != nil {
			return err
		}
		_, err := c.Select(box, nil).Wait()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idle client: %w", err)
	}
	var out []time.Duration
	for i := range n {
		var idle *imapclient.IdleCommand
		if err := guarded(c, 30*time.Second, func() error { var err error; idle, err = c.Idle(); return err }); err != nil {
			return nil, fmt.Errorf("idle: %w", err)
		}
		if err := sleepCtx(ctx, gap); err != nil {
			return nil, err
		}
		for len(exists) > 0 {
			<-exists
		}
		raw := fmt.Appendf(nil, "From: probe@bench.example\r\nTo: %s\r\nSubject: probe %d\r\nMessage-ID: <probe-%d@bench.example>\r\n\r\nprobe\r\n", benchUser, i, i)
		t0 := time.Now()
		if err := appendMsg(app, box, raw); err != nil {
			return nil, fmt.Errorf("append probe: %w", err)
		}
		select {
		case <-exists:
			out = append(out, time.Since(t0))
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("no EXISTS within 10s of probe %d", i)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if err := guarded(c, 30*time.Second, func() error {
			if err := idle.Close(); err != nil {
				return err
			}
			return idle.Wait()
		}); err != nil {
			return nil, fmt.Errorf("leave idle: %w", err)
		}
	}
	return out, nil
}

// watchInboxEmpty polls INBOX's message count with STATUS on a connection
// of its own, every 25 ms, and sends the time since start at which it was
// first 0. It gives up silently (the channel stays empty) when ctx ends or
// IMAP fails; the table then says the intake did not complete.
func watchInboxEmpty(ctx context.Context, addr string, start time.Time) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		c, err := dialIMAP(addr)
		if err != nil {
			progress("backlog: INBOX watch: %v", err)
			return
		}
		defer c.Close()
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			n, err := mailboxCount(c, "INBOX")
			if err != nil {
				progress("backlog: INBOX watch: %v", err)
				return
			}
			if n == 0 {
				out <- time.Since(start)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return out
}
