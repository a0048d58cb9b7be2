package mail

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// What happens to a message after deliver: moved, flagged, or left alone.

func TestWatcherMovesToProcessed(t *testing.T) {
	for _, dest := range []string{"Processed", "Abuse/Done"} { // the second does not exist yet
		t.Run(dest, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			for _, id := range imapIDs("m", 1, 3) {
				ts.add("INBOX", id)
			}
			cfg := ts.cfg()
			cfg.ProcessedMailbox = dest
			cursors := newIMAPMemCursors()
			sink := newIMAPSink()
			r := startIMAPWatcher(t, cfg, cursors, sink)
			sink.next(t, 3)
			imapWaitFor(t, r.idling, "IDLE after the first batch")
			if got := imapList(t, cfg, "INBOX"); len(got) != 0 {
				t.Errorf("INBOX after delivery = %v, want empty", imapIDsOf(got))
			}
			if got := imapIDsOf(imapList(t, cfg, dest)); !imapEqualIDs(got, imapIDs("m", 1, 3)) {
				t.Errorf("%s after delivery = %v, want m1..m3", dest, got)
			}
			if got := cursors.get("INBOX"); got != (imapCursor{1, 3}) {
				t.Errorf("cursor = %+v, want {1 3}", got)
			}
			ts.add("INBOX", "m4")
			sink.next(t, 1)
			imapWaitFor(t, r.idling, "IDLE after m4")
			if got := cursors.get("INBOX"); got != (imapCursor{1, 4}) {
				t.Errorf("cursor after m4 = %+v, want {1 4}", got)
			}
			if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
				t.Errorf("delivered %v, want m1..m4 once each", got)
			}
		})
	}
}

func TestWatcherSeenMode(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	ts.add("INBOX", "read-before", imap.FlagSeen) // handled by someone before our first run
	ts.add("INBOX", "m1")
	cfg := ts.cfg()
	cfg.ProcessedMailbox = ""
	cursors := newIMAPMemCursors()
	sink := newIMAPSink()
	r := startIMAPWatcher(t, cfg, cursors, sink)
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE")
	ts.add("INBOX", "m2", imap.FlagSeen) // a person read it first: above the cursor, still ours
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE")
	// The server answers "UID 4:*" with UID 3 (m2, handled): it must be
	// filtered out, not delivered again.
	r.w.Wake()
	imapWaitFor(t, r.idling, "IDLE after the wake")
	if got := sink.ids(); !imapEqualIDs(got, []string{"m1", "m2"}) {
		t.Errorf("delivered %v, want [m1 m2]", got)
	}
	inbox := imapList(t, cfg, "INBOX")
	if got := imapIDsOf(inbox); !imapEqualIDs(got, []string{"read-before", "m1", "m2"}) {
		t.Fatalf("INBOX = %v, want every message still there", got)
	}
	for _, m := range inbox {
		if !m.has(imap.FlagSeen) || m.has(imap.FlagDeleted) {
			t.Errorf("%s has flags %v, want \\Seen and not \\Deleted", m.ID, m.Flags)
		}
	}
	if got := cursors.get("INBOX"); got != (imapCursor{1, 3}) {
		t.Errorf("cursor = %+v, want {1 3}", got)
	}
}

// A deliver error leaves the message and everything after it untouched and
// the cursor where it was; the message comes again on a later attempt.
func TestWatcherDeliverErrorRetries(t *testing.T) {
	for _, dest := range []string{"Processed", ""} {
		t.Run("processed="+dest, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			for _, id := range imapIDs("m", 1, 3) {
				ts.add("INBOX", id)
			}
			cfg := ts.cfg()
			cfg.ProcessedMailbox = dest
			cursors := newIMAPMemCursors()
			cursors.SetCursor(t.Context(), "INBOX", 1, 0) // known mailbox: the normal path
			sink := newIMAPSink()
			var failing atomic.Bool
			failing.Store(true)
			var attempts atomic.Int32
			sink.setFail(func(in Incoming) error {
				if imapTestID(in.Raw) == "m2" {
					attempts.Add(1)
					if failing.Load() {
						return errIMAPRefused
					}
				}
				return nil
			})
			r := startIMAPWatcher(t, cfg, cursors, sink)
			sink.next(t, 1)
			err := imapWaitFor(t, r.reconnect, "the session to end on the deliver error")
			if !errors.Is(err, errIMAPRefused) || !strings.Contains(err.Error(), "uid 2") {
				t.Errorf("OnReconnect(%v): want the deliver error for uid 2", err)
			}
			// Retries keep failing while we look: the state is stable.
			inbox := imapList(t, cfg, "INBOX")
			want := []string{"m2", "m3"}
			if dest == "" {
				want = []string{"m1", "m2", "m3"}
			}
			if got := imapIDsOf(inbox); !imapEqualIDs(got, want) {
				t.Fatalf("INBOX after the failure = %v, want %v", got, want)
			}
			for _, m := range inbox {
				if m.ID != "m1" && len(m.Flags) != 0 {
					t.Errorf("%s has flags %v after the failure, want none", m.ID, m.Flags)
				}
			}
			if got := cursors.get("INBOX"); got != (imapCursor{1, 1}) {
				t.Errorf("cursor after the failure = %+v, want {1 1}", got)
			}
			if got := sink.ids(); !imapEqualIDs(got, []string{"m1"}) {
				t.Errorf("delivered %v before m2 succeeded, want [m1]: nothing behind a failure", got)
			}
			failing.Store(false)
			sink.next(t, 2)
			if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 3)) {
				t.Errorf("delivered %v, want m1..m3 once each", got)
			}
			if attempts.Load() < 2 {
				t.Errorf("m2 was attempted %d times, want a retry", attempts.Load())
			}
			imapWaitFor(t, r.idling, "IDLE after the retry")
			if got := cursors.get("INBOX"); got != (imapCursor{1, 3}) {
				t.Errorf("cursor after the retry = %+v, want {1 3}", got)
			}
		})
	}
}

// Servers without MOVE: COPY, then \Deleted, then UID EXPUNGE with UIDPLUS;
// without UIDPLUS nothing is expunged (a plain EXPUNGE could take a
// person's \Deleted mail along).
func TestWatcherMoveFallback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		caps      imap.CapSet
		leftInbox bool
	}{
		{"uidplus", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, false},
		{"bare-rev1", imap.CapSet{imap.CapIMAP4rev1: {}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{caps: tc.caps})
			ts.add("INBOX", "keep", imap.FlagDeleted) // a person's: must survive
			ts.add("INBOX", "m1")
			cfg := ts.cfg()
			cfg.ProcessedMailbox = "Abuse/Done"
			cursors := newIMAPMemCursors()
			cursors.SetCursor(t.Context(), "INBOX", 1, 1)
			sink := newIMAPSink()
			r := startIMAPWatcher(t, cfg, cursors, sink)
			sink.next(t, 1)
			imapWaitFor(t, r.idling, "IDLE")
			if got := imapIDsOf(imapList(t, cfg, "Abuse/Done")); !imapEqualIDs(got, []string{"m1"}) {
				t.Errorf("Abuse/Done = %v, want [m1]", got)
			}
			inbox := imapList(t, cfg, "INBOX")
			want := []string{"keep"}
			if tc.leftInbox {
				want = []string{"keep", "m1"}
			}
			if got := imapIDsOf(inbox); !imapEqualIDs(got, want) {
				t.Fatalf("INBOX = %v, want %v", got, want)
			}
			if tc.leftInbox && !(inbox[1].has(imap.FlagDeleted) && inbox[1].has(imap.FlagSeen)) {
				t.Errorf("m1 left in INBOX has flags %v, want \\Deleted \\Seen", inbox[1].Flags)
			}
		})
	}
}

// A backlog arrives in batches of BatchSize, in UID order, each message once;
// it is marked handled in groups of at least markBatch, and the cursor
// advances per group on the normal path and once at the end of a first-run
// scan.
func TestWatcherBacklog(t *testing.T) {
	const n, batch, markBatch = 1000, 100, 250
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("cursor-known=%v", known), func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			for i := 1; i <= n; i++ {
				ts.add("INBOX", fmt.Sprintf("b%04d", i))
			}
			cfg := ts.cfg()
			cfg.BatchSize = batch
			cursors := newIMAPMemCursors()
			if known {
				cursors.SetCursor(t.Context(), "INBOX", 1, 0)
			}
			sink := newIMAPSink()
			r := runIMAPWatcher(t, func(log *slog.Logger) *Watcher {
				w := NewWatcher(cfg, cursors, sink.deliver, log)
				w.markBatch = markBatch
				return w
			})
			got := sink.next(t, n)
			imapWaitFor(t, r.idling, "IDLE after the backlog")
			for i, in := range got {
				if want := fmt.Sprintf("b%04d", i+1); imapTestID(in.Raw) != want || in.UID != uint32(i+1) {
					t.Fatalf("delivery %d = %s uid %d, want %s uid %d", i, imapTestID(in.Raw), in.UID, want, i+1)
				}
			}
			if extra := len(sink.ch); extra != 0 {
				t.Errorf("%d deliveries beyond the %d messages", extra, n)
			}
			if c := strings.Count(r.logs.String(), `msg="imap: batch"`); c != n/batch {
				t.Errorf("logged %d batches, want %d", c, n/batch)
			}
			var lasts []uint32
			writes := cursors.writes()
			if known {
				writes = writes[1:] // the test's own SetCursor
			}
			for _, c := range writes {
				lasts = append(lasts, c.last)
			}
			want := []uint32{n}
			if known {
				want = []uint32{300, 600, 900, 1000} // the first batch ending at or past each 250
			}
			if c := strings.Count(r.logs.String(), `msg="imap: marked handled"`); c != 4 {
				t.Errorf("marked handled %d times, want 4", c)
			}
			if !slices.Equal(lasts, want) {
				t.Errorf("SetCursor last UIDs = %v, want %v", lasts, want)
			}
			if left := imapList(t, cfg, "INBOX"); len(left) != 0 {
				t.Errorf("%d messages left in INBOX, want 0", len(left))
			}
		})
	}
}
