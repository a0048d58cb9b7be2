package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// TestConcurrentWriters runs, at once: the case loop (Update with
// CreateCase, Transition and Enqueue), the outbox sender (DueMail,
// MarkRetry, MarkSent), the IMAP watcher (AddMessage, SetCursor), a reader
// (View), and a second Store on the same file standing in for a CLI process.
// None may fail with SQLITE_BUSY, and every row must be there at the end.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()
	cli, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (second store) = %v", err)
	}
	defer cli.Close()

	const n = 60
	var (
		wg       sync.WaitGroup
		errs     = make(chan error, 100)
		loopDone = make(chan struct{})
	)
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	caseLoop := func(st *Store, prefix string) func() error {
		return func() error {
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("%s%d", prefix, i)
				err := st.Update(ctx, func(tx *Tx) error {
					if err := tx.CreateCase(Case{ID: id, State: abuse.StateReceived}, "notice"); err != nil {
						return err
					}
					if err := tx.Transition(id, abuse.StateAwaitingApproval, "summary queued"); err != nil {
						return err
					}
					_, err := tx.Enqueue(testMail(id+":summary", id))
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	run("case loop", func() error { defer close(loopDone); return caseLoop(s, "d")() })
	run("second store", caseLoop(cli, "cli"))
	run("outbox sender", func() error {
		for {
			select {
			case <-loopDone:
				return nil
			default:
			}
			due, err := s.DueMail(ctx, time.Now().Add(time.Hour), 5)
			if err != nil {
				return err
			}
			for _, m := range due {
				if err := s.MarkRetry(ctx, m.Key, "sending", time.Now()); err != nil {
					return err
				}
				if err := s.MarkSent(ctx, m.Key, time.Now()); err != nil {
					return err
				}
			}
		}
	})
	run("watcher", func() error {
		for i := 1; i <= n; i++ {
			raw := []byte(fmt.Sprintf("mail %d", i))
			if _, _, err := s.AddMessage(ctx, Message{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i), Raw: raw}); err != nil {
				return err
			}
			if err := s.SetCursor(ctx, "INBOX", 1, uint32(i)); err != nil {
				return err
			}
		}
		return nil
	})
	run("reader", func() error {
		for i := 0; i < n; i++ {
			if err := s.View(ctx, func(tx *Tx) error { _, err := tx.Cases(CaseFilter{}); return err }); err != nil {
				return err
			}
		}
		return nil
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	view(t, s, func(tx *Tx) error {
		cs, err := tx.Cases(CaseFilter{States: []abuse.State{abuse.StateAwaitingApproval}})
		if err != nil || len(cs) != 2*n {
			t.Errorf("Cases(awaiting-approval) = %d, %v, want %d", len(cs), err, 2*n)
		}
		return nil
	})
	if uv, uid, err := s.Cursor(ctx, "INBOX"); uv != 1 || uid != n || err != nil {
		t.Errorf("Cursor(INBOX) = %d, %d, %v, want 1, %d", uv, uid, err, n)
	}
	if ms, err := s.PendingMessages(ctx, 0); len(ms) != n || err != nil {
		t.Errorf("PendingMessages = %d, %v, want %d", len(ms), err, n)
	}
}
