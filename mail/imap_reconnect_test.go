package mail

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Losing the server, a rebuilt mailbox, and cancellation.

// The server goes away mid-run; mail that arrives while it is down is
// delivered after it comes back, once.
func TestWatcherReconnectsAndCatchesUp(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	ts.add("INBOX", "m1")
	sink := newIMAPSink()
	r := startIMAPWatcher(t, ts.cfg(), newIMAPMemCursors(), sink)
	imapWaitFor(t, r.connected, "the first connect")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE")

	ts.stop()
	imapWaitFor(t, r.reconnect, "the watcher to notice the lost server")
	ts.add("INBOX", "m2")
	ts.add("INBOX", "m3")
	ts.start()

	imapWaitFor(t, r.connected, "the reconnect")
	sink.next(t, 2)
	imapWaitFor(t, r.idling, "IDLE after the reconnect")
	if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 3)) {
		t.Errorf("delivered %v, want m1..m3 once each", got)
	}
	ts.add("INBOX", "m4")
	sink.next(t, 1)
}

// The mailbox is deleted and created again (UIDVALIDITY changes, UIDs start
// over). The watcher rescans: what is unhandled by the server's own marks is
// delivered, nothing handled comes twice, and the cursor adopts the new
// validity.
func TestWatcherUIDValidityChange(t *testing.T) {
	for _, dest := range []string{"Processed", ""} {
		t.Run("processed="+dest, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			ts.add("INBOX", "m1")
			ts.add("INBOX", "m2")
			cfg := ts.cfg()
			cfg.ProcessedMailbox = dest
			cursors := newIMAPMemCursors()
			sink := newIMAPSink()
			r := startIMAPWatcher(t, cfg, cursors, sink)
			sink.next(t, 2)
			imapWaitFor(t, r.idling, "IDLE")
			old := cursors.get("INBOX")

			ts.stop()
			if err := ts.user.Delete("INBOX"); err != nil {
				t.Fatalf("Delete(INBOX): %v", err)
			}
			if err := ts.user.Create("INBOX", nil); err != nil {
				t.Fatalf("Create(INBOX): %v", err)
			}
			if dest == "" {
				// Restored from a backup with its flags: handled mail is \Seen.
				ts.add("INBOX", "m1", imap.FlagSeen)
				ts.add("INBOX", "m2", imap.FlagSeen)
			}
			ts.add("INBOX", "m3")
			ts.add("INBOX", "m4")
			ts.start()

			sink.next(t, 2)
			imapWaitFor(t, r.idling, "IDLE after the rescan")
			if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
				t.Errorf("delivered %v, want m1..m4 once each", got)
			}
			cur := cursors.get("INBOX")
			if cur.validity == old.validity {
				t.Errorf("cursor validity still %d after the mailbox was recreated", cur.validity)
			}
			wantLast := uint32(2)
			if dest == "" {
				wantLast = 4
			}
			if cur.last != wantLast {
				t.Errorf("cursor last = %d, want %d", cur.last, wantLast)
			}
			ts.add("INBOX", "m5")
			sink.next(t, 1)
			if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 5)) {
				t.Errorf("delivered %v, want m1..m5 once each", got)
			}
		})
	}
}

func TestWatcherCancel(t *testing.T) {
	// Each case puts the watcher in a different blocking place, then cancels.
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (IMAPConfig, func(r *imapRun))
	}{
		{"idling", func(t *testing.T) (IMAPConfig, func(*imapRun)) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			return ts.cfg(), func(r *imapRun) { imapWaitFor(t, r.idling, "IDLE") }
		}},
		{"polling", func(t *testing.T) (IMAPConfig, func(*imapRun)) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			cfg := ts.cfg()
			cfg.IDLE = false
			return cfg, func(r *imapRun) { imapWaitFor(t, r.connected, "OnConnect") }
		}},
		{"backing-off", func(t *testing.T) (IMAPConfig, func(*imapRun)) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			ts.stop()
			return ts.cfg(), func(r *imapRun) { imapWaitFor(t, r.reconnect, "a failed attempt") }
		}},
		{"silent-server", func(t *testing.T) (IMAPConfig, func(*imapRun)) {
			// Accepts and never greets: the watcher is stuck in the greeting.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					accepted <- c
				}
			}()
			cfg := IMAPConfig{Address: ln.Addr().String(), TLS: "none", Username: "u", Password: "p", DialTimeout: time.Minute}
			return cfg, func(*imapRun) {
				c := imapWaitFor(t, accepted, "the watcher to connect")
				t.Cleanup(func() { c.Close() })
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ready := tc.setup(t)
			r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), newIMAPSink())
			ready(r)
			start := time.Now()
			r.cancel()
			err := imapWaitFor(t, r.done, "Run to return after cancel")
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run() = %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run took %s to return after cancel", d)
			}
			r.done <- err // for the cleanup's wait
		})
	}
}

func TestReconnectBackoff(t *testing.T) {
	b := reconnectBackoff{min: time.Second, max: 2 * time.Minute}
	steps := []time.Duration{1, 2, 4, 8, 16, 32, 64, 120, 120, 120}
	for i, s := range steps {
		step := s * time.Second
		if got := b.next(); got < step/2 || got > step {
			t.Errorf("next() #%d = %s, want within [%s, %s]", i+1, got, step/2, step)
		}
	}
	if b.attempts() != len(steps) {
		t.Errorf("attempts() = %d, want %d", b.attempts(), len(steps))
	}
	b.reset()
	if got := b.next(); got < time.Second/2 || got > time.Second {
		t.Errorf("next() after reset = %s, want within [500ms, 1s]", got)
	}
}

// Jitter: many watchers that lost the same server do not all come back at once.
func TestReconnectBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		b := reconnectBackoff{min: time.Second, max: 2 * time.Minute}
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Errorf("20 first delays were all %v, want jitter", seen)
	}
}
