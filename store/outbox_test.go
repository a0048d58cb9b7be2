package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

func testMail(key, caseID string) OutMail {
	return OutMail{
		Key: key, CaseID: caseID, Kind: "summary", MessageID: "<" + key + "@abuse.example.com>",
		From: "abuse@example.com", To: []string{"ops@example.com", "alice@example.com"},
		Raw: []byte("Subject: " + key + "\r\n\r\nbody\r\n"),
	}
}

func dueKeys(t *testing.T, s *Store, now time.Time, limit int) []string {
	t.Helper()
	ms, err := s.DueMail(context.Background(), now, limit)
	if err != nil {
		t.Fatalf("DueMail(%v, %d) = %v", now, limit, err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key)
	}
	return keys
}

func TestEnqueue(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
	m := testMail("c1:summary:1", "c1")
	m.Status, m.Attempts, m.LastError = OutSent, 5, "ignored" // Enqueue always starts queued
	for i, want := range []bool{true, false} {
		var got bool
		update(t, s, func(tx *Tx) (err error) { got, err = tx.Enqueue(m); return err })
		if got != want {
			t.Errorf("Enqueue(%s) #%d = %v, want %v", m.Key, i+1, got, want)
		}
	}
	got, err := s.OutMail(context.Background(), m.Key)
	if err != nil {
		t.Fatalf("OutMail(%s) = %v", m.Key, err)
	}
	want := testMail("c1:summary:1", "c1")
	want.Status, want.NextAttempt, want.CreatedAt = OutQueued, t0.Add(2*time.Second), t0.Add(2*time.Second)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OutMail(%s) =\n%+v\nwant\n%+v", m.Key, got, want)
	}
	if _, err := s.OutMail(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OutMail(nope) = %v, want ErrNotFound", err)
	}

	for name, bad := range map[string]func(*OutMail){
		"no key":        func(m *OutMail) { m.Key = "" },
		"no Message-ID": func(m *OutMail) { m.MessageID = "" },
		"no recipients": func(m *OutMail) { m.To = nil },
		"no body":       func(m *OutMail) { m.Raw = nil },
		"unknown case":  func(m *OutMail) { m.CaseID = "missing" },
	} {
		m := testMail("k:"+name, "c1")
		bad(&m)
		err := s.Update(context.Background(), func(tx *Tx) error { _, err := tx.Enqueue(m); return err })
		if err == nil {
			t.Errorf("Enqueue(%s) = nil, want an error", name)
		}
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
	later := t0.Add(time.Hour)
	update(t, s, func(tx *Tx) error {
		for _, m := range []OutMail{
			testMail("c1:summary:1", "c1"),
			{Key: "c1:reply", CaseID: "c1", Kind: "reply", MessageID: "<r@x>", To: []string{"aws@x"}, Raw: []byte("r"), NextAttempt: later},
			{Key: "alert:1", Kind: "alert", MessageID: "<a@x>", To: []string{"ops@x"}, Raw: []byte("a")},
			{Key: "c1:old", CaseID: "c1", Kind: "reminder", MessageID: "<o@x>", To: []string{"ops@x"}, Raw: []byte("o"), CreatedAt: t0.Add(-time.Hour)},
		} {
			if _, err := tx.Enqueue(m); err != nil {
				return err
			}
		}
		return nil
	})
	now := t0.Add(2 * time.Second) // the transaction's time

	for _, c := range []struct {
		name  string
		now   time.Time
		limit int
		want  []string
	}{
		{"before NextAttempt", now.Add(-time.Nanosecond), 0, nil},
		{"at NextAttempt, oldest first", now, 0, []string{"c1:old", "c1:summary:1", "alert:1"}},
		{"limit", now, 2, []string{"c1:old", "c1:summary:1"}},
		{"later mail due", later, 10, []string{"c1:old", "c1:summary:1", "c1:reply", "alert:1"}},
	} {
		if got := dueKeys(t, s, c.now, c.limit); !reflect.DeepEqual(got, c.want) {
			t.Errorf("DueMail %s = %v, want %v", c.name, got, c.want)
		}
	}

	// A retry moves the mail out of the due list until its next attempt.
	next := now.Add(10 * time.Minute)
	for i := 1; i <= 2; i++ {
		if err := s.MarkRetry(ctx, "c1:summary:1", "421 try later", next); err != nil {
			t.Fatalf("MarkRetry #%d = %v", i, err)
		}
	}
	if got := dueKeys(t, s, now, 0); !reflect.DeepEqual(got, []string{"c1:old", "alert:1"}) {
		t.Errorf("DueMail after MarkRetry = %v, want c1:old alert:1", got)
	}
	if got := dueKeys(t, s, next, 0); !reflect.DeepEqual(got, []string{"c1:old", "c1:summary:1", "alert:1"}) {
		t.Errorf("DueMail at the retry time = %v, want c1:summary:1 back in its place", got)
	}
	m, _ := s.OutMail(ctx, "c1:summary:1")
	if m.Attempts != 2 || m.LastError != "421 try later" || !m.NextAttempt.Equal(next) || m.Status != OutQueued {
		t.Errorf("OutMail after 2 MarkRetry = attempts %d, error %q, next %v, %s", m.Attempts, m.LastError, m.NextAttempt, m.Status)
	}

	sentAt := now.Add(11 * time.Minute)
	if err := s.MarkSent(ctx, "c1:summary:1", sentAt); err != nil {
		t.Fatalf("MarkSent = %v", err)
	}
	if err := s.MarkFailed(ctx, "alert:1", "550 no such user"); err != nil {
		t.Fatalf("MarkFailed = %v", err)
	}
	if got := dueKeys(t, s, later, 0); !reflect.DeepEqual(got, []string{"c1:old", "c1:reply"}) {
		t.Errorf("DueMail after MarkSent/MarkFailed = %v, want c1:old c1:reply", got)
	}
	m, _ = s.OutMail(ctx, "c1:summary:1")
	if m.Status != OutSent || !m.SentAt.Equal(sentAt) || m.LastError != "" || m.Attempts != 2 {
		t.Errorf("OutMail after MarkSent = %s at %v, error %q, attempts %d", m.Status, m.SentAt, m.LastError, m.Attempts)
	}
	m, _ = s.OutMail(ctx, "alert:1")
	if m.Status != OutFailed || m.LastError != "550 no such user" || m.Attempts != 1 || !m.SentAt.IsZero() {
		t.Errorf("OutMail after MarkFailed = %s, error %q, attempts %d, sent %v", m.Status, m.LastError, m.Attempts, m.SentAt)
	}

	for _, c := range []struct {
		call string
		err  error
		want error
	}{
		{"MarkSent(sent again)", s.MarkSent(ctx, "c1:summary:1", sentAt), nil},
		{"MarkRetry(sent)", s.MarkRetry(ctx, "c1:summary:1", "x", later), ErrNotQueued},
		{"MarkFailed(sent)", s.MarkFailed(ctx, "c1:summary:1", "x"), ErrNotQueued},
		{"MarkSent(failed)", s.MarkSent(ctx, "alert:1", sentAt), ErrNotQueued},
		{"MarkRetry(failed)", s.MarkRetry(ctx, "alert:1", "x", later), ErrNotQueued},
		{"MarkSent(missing)", s.MarkSent(ctx, "nope", sentAt), ErrNotFound},
		{"MarkRetry(missing)", s.MarkRetry(ctx, "nope", "x", later), ErrNotFound},
		{"MarkFailed(missing)", s.MarkFailed(ctx, "nope", "x"), ErrNotFound},
	} {
		if !errors.Is(c.err, c.want) || (c.want == nil && c.err != nil) {
			t.Errorf("%s = %v, want %v", c.call, c.err, c.want)
		}
	}

	view(t, s, func(tx *Tx) error {
		out, err := tx.Outbox("c1")
		var keys []string
		for _, m := range out {
			keys = append(keys, m.Key)
		}
		if want := []string{"c1:old", "c1:summary:1", "c1:reply"}; err != nil || !reflect.DeepEqual(keys, want) {
			t.Errorf("Outbox(c1) = %v, %v, want %v", keys, err, want)
		}
		if out, err := tx.Outbox(""); err != nil || len(out) != 1 || out[0].Key != "alert:1" || out[0].CaseID != "" {
			t.Errorf("Outbox(\"\") = %+v, %v, want alert:1", out, err)
		}
		return nil
	})
}

// MarkRetries and MarkSentAll mark several mails with one commit, with
// MarkRetry's and MarkSent's rules per mail; one bad key rolls back all.
func TestMarkBatches(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
	keys := []string{"c1:a", "c1:b", "c1:c"}
	update(t, s, func(tx *Tx) error {
		for _, k := range keys {
			if _, err := tx.Enqueue(testMail(k, "c1")); err != nil {
				return err
			}
		}
		return nil
	})
	later := t0.Add(time.Hour)
	if err := s.MarkRetries(ctx, []Retry{{Key: "c1:a", ErrText: "sending", Next: later}, {Key: "c1:b", ErrText: "sending", Next: later}}); err != nil {
		t.Fatalf("MarkRetries = %v", err)
	}
	if got := dueKeys(t, s, t0.Add(time.Minute), 0); !reflect.DeepEqual(got, []string{"c1:c"}) {
		t.Errorf("due after MarkRetries = %v, want [c1:c]", got)
	}
	for _, k := range keys[:2] {
		m, _ := s.OutMail(ctx, k)
		if m.Attempts != 1 || m.LastError != "sending" || !m.NextAttempt.Equal(later) {
			t.Errorf("%s after MarkRetries: attempts %d, error %q, next %v", k, m.Attempts, m.LastError, m.NextAttempt)
		}
	}
	// A failed mail in the batch rolls back the marks before it.
	if err := s.MarkFailed(ctx, "c1:c", "550"); err != nil {
		t.Fatal(err)
	}
	err := s.MarkSentAll(ctx, []string{"c1:a", "c1:c"}, later)
	if !errors.Is(err, ErrNotQueued) {
		t.Errorf("MarkSentAll(with a failed mail) = %v, want ErrNotQueued", err)
	}
	if m, _ := s.OutMail(ctx, "c1:a"); m.Status != OutQueued {
		t.Errorf("c1:a is %s after a failed batch, want still queued", m.Status)
	}
	if err := s.MarkSentAll(ctx, []string{"c1:a", "c1:b"}, later); err != nil {
		t.Fatalf("MarkSentAll = %v", err)
	}
	// Marking sent mail sent again is a no-op, as for MarkSent.
	if err := s.MarkSentAll(ctx, []string{"c1:b", "c1:a"}, later); err != nil {
		t.Errorf("MarkSentAll(again) = %v, want nil", err)
	}
	for _, k := range keys[:2] {
		if m, _ := s.OutMail(ctx, k); m.Status != OutSent || !m.SentAt.Equal(later) {
			t.Errorf("%s: %s at %v, want sent at %v", k, m.Status, m.SentAt, later)
		}
	}
	if err := s.MarkRetries(ctx, []Retry{{Key: "nope"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkRetries(unknown key) = %v, want ErrNotFound", err)
	}
	if err := s.MarkRetries(ctx, nil); err != nil {
		t.Errorf("MarkRetries(nil) = %v", err)
	}
}
