package mail

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// imapBatchSink records what a batch watcher delivered, batch by batch;
// fail, when set, can refuse a whole batch.
type imapBatchSink struct {
	mu      sync.Mutex
	batches [][]string // ids, per successful deliver call
	fail    func([]Incoming) error
	ch      chan []string
}

func newIMAPBatchSink() *imapBatchSink { return &imapBatchSink{ch: make(chan []string, 1024)} }

func (s *imapBatchSink) deliver(_ context.Context, msgs []Incoming) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		if err := fail(msgs); err != nil {
			return err
		}
	}
	var ids []string
	for _, in := range msgs {
		ids = append(ids, imapTestID(in.Raw))
	}
	s.mu.Lock()
	s.batches = append(s.batches, ids)
	s.mu.Unlock()
	s.ch <- ids
	return nil
}

// all lists every id delivered, in order.
func (s *imapBatchSink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Concat(s.batches...)
}

// next waits until n more messages have been delivered.
func (s *imapBatchSink) next(t *testing.T, n int) []string {
	t.Helper()
	timeout := time.NewTimer(imapWait)
	defer timeout.Stop()
	var out []string
	for len(out) < n {
		select {
		case ids := <-s.ch:
			out = append(out, ids...)
		case <-timeout.C:
			t.Fatalf("waited %s for %d deliveries, got %d: %v", imapWait, n, len(out), s.all())
		}
	}
	return out
}

// A batch watcher hands each FETCH over whole, in UID order, and moves it
// only after deliver returned.
func TestBatchWatcherBacklog(t *testing.T) {
	const n, batch = 1000, 256
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	for i := 1; i <= n; i++ {
		ts.add("INBOX", fmt.Sprintf("b%04d", i))
	}
	cfg := ts.cfg()
	cfg.BatchSize = batch
	cursors := newIMAPMemCursors()
	cursors.SetCursor(t.Context(), "INBOX", 1, 0)
	sink := newIMAPBatchSink()
	r := startIMAPBatchWatcher(t, cfg, cursors, sink)
	got := sink.next(t, n)
	imapWaitFor(t, r.idling, "IDLE after the backlog")
	for i, id := range got {
		if want := fmt.Sprintf("b%04d", i+1); id != want {
			t.Fatalf("delivery %d = %s, want %s: every message once, in UID order", i, id, want)
		}
	}
	sink.mu.Lock()
	var sizes []int
	for _, b := range sink.batches {
		sizes = append(sizes, len(b))
	}
	sink.mu.Unlock()
	if want := []int{256, 256, 256, 232}; !slices.Equal(sizes, want) {
		t.Errorf("deliver calls of %v messages, want %v", sizes, want)
	}
	if left := imapList(t, cfg, "INBOX"); len(left) != 0 {
		t.Errorf("%d messages left in INBOX, want 0", len(left))
	}
	if got := cursors.get("INBOX"); got != (imapCursor{1, n}) {
		t.Errorf("cursor = %+v, want {1 %d}", got, n)
	}
}

// A deliver error in the middle of a backlog (the daemon crashed, the disk
// is full) marks nothing of that batch handled: it stays in INBOX, unflagged,
// the cursor stays behind it, and the next attempt delivers it, and
// everything after it, exactly once. The batches before it stay handled.
func TestBatchWatcherDeliverErrorMidBacklog(t *testing.T) {
	for _, dest := range []string{"Processed", ""} {
		t.Run("processed="+dest, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{})
			for i := 1; i <= 10; i++ {
				ts.add("INBOX", fmt.Sprintf("m%d", i))
			}
			cfg := ts.cfg()
			cfg.ProcessedMailbox = dest
			cfg.BatchSize = 4
			cursors := newIMAPMemCursors()
			cursors.SetCursor(t.Context(), "INBOX", 1, 0)
			sink := newIMAPBatchSink()
			var failing atomic.Bool
			failing.Store(true)
			var attempts atomic.Int32
			sink.fail = func(msgs []Incoming) error {
				if imapTestID(msgs[0].Raw) == "m5" {
					attempts.Add(1)
					if failing.Load() {
						return errIMAPRefused
					}
				}
				return nil
			}
			r := startIMAPBatchWatcher(t, cfg, cursors, sink)
			if got := sink.next(t, 4); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
				t.Fatalf("first batch = %v, want m1..m4", got)
			}
			err := imapWaitFor(t, r.reconnect, "the session to end on the deliver error")
			if !strings.Contains(err.Error(), "uid 5 to 8") || !strings.Contains(err.Error(), errIMAPRefused.Error()) {
				t.Errorf("OnReconnect(%v): want the deliver error for uids 5 to 8", err)
			}
			inbox := imapList(t, cfg, "INBOX")
			want := imapIDs("m", 5, 10)
			if dest == "" {
				want = imapIDs("m", 1, 10)
			}
			if got := imapIDsOf(inbox); !imapEqualIDs(got, want) {
				t.Fatalf("INBOX after the failure = %v, want %v", got, want)
			}
			for _, m := range inbox {
				handled := m.UID <= 4
				if m.has(imap.FlagSeen) != (handled && dest == "") || m.has(imap.FlagDeleted) {
					t.Errorf("%s has flags %v after the failure", m.ID, m.Flags)
				}
			}
			if dest != "" {
				if got := imapIDsOf(imapList(t, cfg, dest)); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
					t.Errorf("%s after the failure = %v, want m1..m4", dest, got)
				}
			}
			if got := cursors.get("INBOX"); got != (imapCursor{1, 4}) {
				t.Errorf("cursor after the failure = %+v, want {1 4}", got)
			}

			failing.Store(false)
			sink.next(t, 6)
			imapWaitFor(t, r.idling, "IDLE after the retry")
			if got := sink.all(); !imapEqualIDs(got, imapIDs("m", 1, 10)) {
				t.Errorf("delivered %v, want m1..m10 once each", got)
			}
			if attempts.Load() < 2 {
				t.Errorf("the batch from m5 was attempted %d times, want a retry", attempts.Load())
			}
			if got := cursors.get("INBOX"); got != (imapCursor{1, 10}) {
				t.Errorf("cursor after the retry = %+v, want {1 10}", got)
			}
			if dest != "" {
				if left := imapList(t, cfg, "INBOX"); len(left) != 0 {
					t.Errorf("INBOX after the retry = %v, want empty", imapIDsOf(left))
				}
			}
		})
	}
}

// A FETCH whose mail exceeds the byte bound is handed over in parts, each
// within the bound; a part that fails keeps the parts before it handled.
func TestBatchWatcherByteBound(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	for i := 1; i <= 6; i++ {
		ts.add("INBOX", fmt.Sprintf("m%d", i))
	}
	size := len(imapTestMail("m1"))
	cfg := ts.cfg()
	cursors := newIMAPMemCursors()
	cursors.SetCursor(t.Context(), "INBOX", 1, 0)
	sink := newIMAPBatchSink()
	var failing atomic.Bool
	failing.Store(true)
	sink.fail = func(msgs []Incoming) error {
		if imapTestID(msgs[0].Raw) == "m5" && failing.Load() {
			return errIMAPRefused
		}
		return nil
	}
	r := runIMAPWatcher(t, func(log *slog.Logger) *Watcher {
		w := NewBatchWatcher(cfg, cursors, sink.deliver, log)
		w.batchBytes = 2*size + size/2 // two mails fit, three do not
		return w
	})
	sink.next(t, 4)
	imapWaitFor(t, r.reconnect, "the session to end on the deliver error")
	if got := imapIDsOf(imapList(t, cfg, "INBOX")); !imapEqualIDs(got, []string{"m5", "m6"}) {
		t.Errorf("INBOX after the failed part = %v, want [m5 m6]", got)
	}
	failing.Store(false)
	sink.next(t, 2)
	imapWaitFor(t, r.idling, "IDLE")
	sink.mu.Lock()
	defer sink.mu.Unlock()
	want := [][]string{{"m1", "m2"}, {"m3", "m4"}, {"m5", "m6"}}
	if !slices.EqualFunc(sink.batches, want, slices.Equal) {
		t.Errorf("deliver calls %v, want %v", sink.batches, want)
	}
}
