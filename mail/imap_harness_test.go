package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Test doubles for our own interfaces and a harness that runs a Watcher.

// imapWait bounds every wait in these tests; it only fails a test, it never
// paces one.
const imapWait = 15 * time.Second

// imapMemCursors is an in-memory CursorStore that remembers every write.
type imapMemCursors struct {
	mu   sync.Mutex
	m    map[string]imapCursor
	sets []imapCursor
}

func newIMAPMemCursors() *imapMemCursors { return &imapMemCursors{m: map[string]imapCursor{}} }

func (s *imapMemCursors) Cursor(_ context.Context, mailbox string) (uint32, uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[mailbox]
	return c.validity, c.last, nil
}

func (s *imapMemCursors) SetCursor(_ context.Context, mailbox string, v, last uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[mailbox] = imapCursor{validity: v, last: last}
	s.sets = append(s.sets, imapCursor{validity: v, last: last})
	return nil
}

func (s *imapMemCursors) get(mailbox string) imapCursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[mailbox]
}

func (s *imapMemCursors) writes() []imapCursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sets)
}

// imapSink records what the watcher delivered; fail, when set, can refuse.
type imapSink struct {
	mu   sync.Mutex
	got  []Incoming
	fail func(Incoming) error
	ch   chan Incoming
}

func newIMAPSink() *imapSink { return &imapSink{ch: make(chan Incoming, 4096)} }

func (s *imapSink) deliver(_ context.Context, in Incoming) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		if err := fail(in); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.got = append(s.got, in)
	s.mu.Unlock()
	s.ch <- in
	return nil
}

func (s *imapSink) setFail(f func(Incoming) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// ids lists the ids of every delivery so far, in order.
func (s *imapSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, in := range s.got {
		out = append(out, imapTestID(in.Raw))
	}
	return out
}

// next waits for n more deliveries.
func (s *imapSink) next(t *testing.T, n int) []Incoming {
	t.Helper()
	timeout := time.NewTimer(imapWait)
	defer timeout.Stop()
	var out []Incoming
	for len(out) < n {
		select {
		case in := <-s.ch:
			out = append(out, in)
		case <-timeout.C:
			t.Fatalf("waited %s for %d deliveries, got %d: %v", imapWait, n, len(out), s.ids())
		}
	}
	return out
}

// imapRun is a Watcher running in the background with its signals on
// channels.
type imapRun struct {
	w         *Watcher
	cancel    context.CancelFunc
	done      chan error
	connected chan struct{}
	idling    chan struct{}
	reconnect chan error
	logs      *imapLogBuf
}

// startIMAPWatcher runs a watcher for cfg until the test ends.
func startIMAPWatcher(t *testing.T, cfg IMAPConfig, cursors CursorStore, sink *imapSink) *imapRun {
	t.Helper()
	return runIMAPWatcher(t, func(log *slog.Logger) *Watcher { return NewWatcher(cfg, cursors, sink.deliver, log) })
}

// startIMAPBatchWatcher is startIMAPWatcher for a batch deliver.
func startIMAPBatchWatcher(t *testing.T, cfg IMAPConfig, cursors CursorStore, sink *imapBatchSink) *imapRun {
	t.Helper()
	return runIMAPWatcher(t, func(log *slog.Logger) *Watcher { return NewBatchWatcher(cfg, cursors, sink.deliver, log) })
}

func runIMAPWatcher(t *testing.T, newW func(*slog.Logger) *Watcher) *imapRun {
	t.Helper()
	r := &imapRun{
		done:      make(chan error, 1),
		connected: make(chan struct{}, 64),
		idling:    make(chan struct{}, 1024),
		reconnect: make(chan error, 1024),
		logs:      &imapLogBuf{},
	}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.w = newW(log)
	r.w.backoffMin, r.w.backoffMax = 20*time.Millisecond, 200*time.Millisecond
	r.w.OnConnect = func() { r.connected <- struct{}{} }
	r.w.OnReconnect = func(err error) { r.reconnect <- err }
	r.w.onIdle = func() { r.idling <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(imapWait):
			t.Errorf("Run did not return within %s of cancel", imapWait)
		}
		if t.Failed() {
			t.Logf("watcher log:\n%s", r.logs)
		}
	})
	return r
}

// imapWaitFor receives once from ch or fails the test.
func imapWaitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(imapWait):
		t.Fatalf("waited %s for %s", imapWait, what)
	}
	var zero T
	return zero
}

// imapLogBuf is a log sink safe for the watcher's goroutine and the test.
type imapLogBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *imapLogBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *imapLogBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// imapMsg is what the tests check about a message on the server.
type imapMsg struct {
	UID   uint32
	ID    string
	Flags []imap.Flag
}

func (m imapMsg) has(f imap.Flag) bool { return slices.Contains(m.Flags, f) }

// imapList reads a mailbox read-only over a separate connection.
func imapList(t *testing.T, cfg IMAPConfig, mailbox string) []imapMsg {
	t.Helper()
	var out []imapMsg
	err := imapShortSession(imapTestCtx(t, imapWait), cfg, func(c *imapclient.Client) error {
		sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return err
		}
		if sel.NumMessages == 0 {
			return nil
		}
		body := &imap.FetchItemBodySection{Peek: true}
		set := imap.SeqSet{{Start: 1, Stop: 0}}
		bufs, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{body}}).Collect()
		if err != nil {
			return err
		}
		for _, b := range bufs {
			out = append(out, imapMsg{UID: uint32(b.UID), ID: imapTestID(b.FindBodySection(body)), Flags: b.Flags})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", mailbox, err)
	}
	slices.SortFunc(out, func(a, b imapMsg) int { return int(a.UID) - int(b.UID) })
	return out
}

// imapIDsOf lists the ids of msgs.
func imapIDsOf(msgs []imapMsg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// errIMAPRefused is what a failing deliver returns in the tests.
var errIMAPRefused = errors.New("store unavailable (test)")

// imapIDs is a shorthand for the ids m1…mn.
func imapIDs(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// imapEqualIDs compares two id lists for a failure message.
func imapEqualIDs(got, want []string) bool { return strings.Join(got, ",") == strings.Join(want, ",") }
