package store

import (
	"context"
	"errors"
	"testing"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// TestUpdateRollsBack proves the promise the daemon relies on: when the
// function given to Update fails or panics, the case, its transition, its
// effect, its queued mail and the message status it wrote are all absent.
func TestUpdateRollsBack(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	for _, c := range []struct {
		name  string
		panic bool
	}{{"error", false}, {"panic", true}} {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t)
			msg, _, err := s.AddMessage(ctx, Message{Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: []byte("n")})
			if err != nil {
				t.Fatal(err)
			}
			var got any
			func() {
				defer func() {
					if r := recover(); r != nil {
						got = r
					}
				}()
				got = s.Update(ctx, func(tx *Tx) error {
					if err := tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "notice"); err != nil {
						return err
					}
					if err := tx.Transition("c1", abuse.StateParsed, "parsed"); err != nil {
						return err
					}
					if _, err := tx.RecordEffect(Effect{Key: "c1:summary:1", CaseID: "c1", Kind: "summary"}); err != nil {
						return err
					}
					if _, err := tx.Enqueue(testMail("c1:summary:1", "c1")); err != nil {
						return err
					}
					if err := tx.SetMessageStatus(msg, StatusHandled, "c1", ""); err != nil {
						return err
					}
					if c.panic {
						panic(boom)
					}
					return boom
				})
			}()
			if got != boom {
				if e, ok := got.(error); !ok || !errors.Is(e, boom) {
					t.Fatalf("Update = %v, want boom passed on", got)
				}
			}

			view(t, s, func(tx *Tx) error {
				if _, ok, err := tx.Case("c1"); ok || err != nil {
					t.Errorf("Case(c1) = %v, %v, want absent", ok, err)
				}
				if tr, _ := tx.Transitions("c1"); len(tr) != 0 {
					t.Errorf("Transitions(c1) = %v, want none", tr)
				}
				if _, ok, _ := tx.Effect("c1:summary:1"); ok {
					t.Errorf("Effect(c1:summary:1) present, want absent")
				}
				if out, _ := tx.Outbox("c1"); len(out) != 0 {
					t.Errorf("Outbox(c1) = %d mails, want none", len(out))
				}
				return nil
			})
			if _, err := s.OutMail(ctx, "c1:summary:1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("OutMail(c1:summary:1) = %v, want ErrNotFound", err)
			}
			if m, _ := s.Message(ctx, msg); m.Status != StatusPending {
				t.Errorf("Message(%d).Status = %s, want pending", msg, m.Status)
			}
			// The writer is free again: the rollback released it.
			update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
		})
	}
}

func TestViewIsReadOnly(t *testing.T) {
	s := openTest(t)
	err := s.View(context.Background(), func(tx *Tx) error {
		return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "")
	})
	if err == nil {
		t.Fatalf("View(CreateCase) = nil, want a read-only error")
	}
	view(t, s, func(tx *Tx) error {
		if _, ok, _ := tx.Case("c1"); ok {
			t.Errorf("Case(c1) present after a write inside View")
		}
		return nil
	})
}

func TestUpdateHonoursContext(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := s.Update(ctx, func(tx *Tx) error { called = true; return nil })
	if err == nil || called {
		t.Errorf("Update(cancelled ctx) = %v, fn called %v; want an error and no call", err, called)
	}
}
