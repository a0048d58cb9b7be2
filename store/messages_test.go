package store

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAddMessageDedup(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	first := Message{Mailbox: "INBOX", UIDValidity: 7, UID: 1, MessageID: "<a@x>", Raw: []byte("mail a")}
	firstID, dup, err := s.AddMessage(ctx, first)
	if err != nil || dup {
		t.Fatalf("AddMessage(first) = %d, %v, %v, want new", firstID, dup, err)
	}
	cliID, dup, err := s.AddMessage(ctx, Message{MessageID: "<cli@x>", Raw: []byte("from a file")})
	if err != nil || dup {
		t.Fatalf("AddMessage(UID 0) = %d, %v, %v, want new", cliID, dup, err)
	}

	for _, c := range []struct {
		name    string
		m       Message
		wantDup bool
		wantID  int64 // when wantDup
	}{
		{"same IMAP position, other bytes", Message{Mailbox: "INBOX", UIDValidity: 7, UID: 1, MessageID: "<other@x>", Raw: []byte("?")}, true, firstID},
		{"same Message-ID and bytes, other mailbox", Message{Mailbox: "Abuse/Done", UIDValidity: 3, UID: 9, MessageID: "<a@x>", Raw: []byte("mail a")}, true, firstID},
		{"same Message-ID and bytes, new UIDVALIDITY", Message{Mailbox: "INBOX", UIDValidity: 8, UID: 1, MessageID: "<a@x>", Raw: []byte("mail a")}, true, firstID},
		{"same file again, no UID", Message{MessageID: "<cli@x>", Raw: []byte("from a file")}, true, cliID},
		{"same Message-ID, other bytes", Message{Mailbox: "INBOX", UIDValidity: 7, UID: 2, MessageID: "<a@x>", Raw: []byte("forged a")}, false, 0},
		{"same bytes, other Message-ID", Message{Mailbox: "INBOX", UIDValidity: 7, UID: 3, MessageID: "<b@x>", Raw: []byte("mail a")}, false, 0},
		{"same UID, other UIDVALIDITY", Message{Mailbox: "INBOX", UIDValidity: 9, UID: 1, MessageID: "", Raw: []byte("c")}, false, 0},
		{"same UID, other mailbox", Message{Mailbox: "Junk", UIDValidity: 7, UID: 1, MessageID: "", Raw: []byte("d")}, false, 0},
		{"other file, no UID", Message{MessageID: "", Raw: []byte("another file")}, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			id, dup, err := s.AddMessage(ctx, c.m)
			if err != nil {
				t.Fatalf("AddMessage = %v", err)
			}
			if dup != c.wantDup || (c.wantDup && id != c.wantID) || (!c.wantDup && (id == firstID || id == cliID)) {
				t.Errorf("AddMessage = %d, dup %v; want dup %v (id %d)", id, dup, c.wantDup, c.wantID)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	at := time.Date(2026, 4, 14, 3, 12, 9, 123456789, time.FixedZone("CEST", 7200))
	var ids []int64
	for i, raw := range []string{"one", "two", "three"} {
		id, _, err := s.AddMessage(ctx, Message{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
			MessageID: "<" + raw + "@x>", Raw: []byte(raw + "\x00\xff"), FetchedAt: at})
		if err != nil {
			t.Fatalf("AddMessage(%s) = %v", raw, err)
		}
		ids = append(ids, id)
	}

	m, err := s.Message(ctx, ids[1])
	if err != nil {
		t.Fatalf("Message(%d) = %v", ids[1], err)
	}
	want := Message{ID: ids[1], Mailbox: "INBOX", UIDValidity: 1, UID: 2, MessageID: "<two@x>",
		Raw: []byte("two\x00\xff"), FetchedAt: at.UTC(), Status: StatusPending}
	if !bytes.Equal(m.Raw, want.Raw) || m.FetchedAt != want.FetchedAt {
		t.Errorf("Message(%d) = raw %q at %v, want %q at %v", ids[1], m.Raw, m.FetchedAt, want.Raw, want.FetchedAt)
	}
	m.Raw, want.Raw = nil, nil
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Message(%d) = %+v, want %+v", ids[1], m, want)
	}
	if _, err := s.Message(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message(999) = %v, want ErrNotFound", err)
	}

	pending := func(limit int) []int64 {
		ms, err := s.PendingMessages(ctx, limit)
		if err != nil {
			t.Fatalf("PendingMessages(%d) = %v", limit, err)
		}
		var got []int64
		for _, m := range ms {
			got = append(got, m.ID)
		}
		return got
	}
	if got := pending(2); !equalIDs(got, ids[:2]) {
		t.Errorf("PendingMessages(2) = %v, want %v", got, ids[:2])
	}

	if err := s.SetMessageStatus(ctx, ids[0], StatusIgnored, "", "not a notice"); err != nil {
		t.Fatalf("SetMessageStatus(%d, ignored) = %v", ids[0], err)
	}
	update(t, s, func(tx *Tx) error { return tx.SetMessageStatus(ids[2], StatusHandled, "c1", "opened") })
	if got := pending(0); !equalIDs(got, ids[1:2]) {
		t.Errorf("PendingMessages(0) after marking = %v, want %v", got, ids[1:2])
	}
	if m, _ := s.Message(ctx, ids[2]); m.Status != StatusHandled || m.CaseID != "c1" || m.Note != "opened" {
		t.Errorf("Message(%d) after Tx.SetMessageStatus = %s %q %q, want handled c1 opened", ids[2], m.Status, m.CaseID, m.Note)
	}
	if err := s.SetMessageStatus(ctx, 999, StatusFailed, "", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetMessageStatus(999) = %v, want ErrNotFound", err)
	}
	if err := s.SetMessageStatus(ctx, ids[1], "done", "", ""); err == nil {
		t.Errorf("SetMessageStatus(%d, \"done\") = nil, want an unknown-status error", ids[1])
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCursor(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	for _, c := range []struct {
		name    string
		mailbox string
		set     bool
		uv, uid uint32
	}{
		{"never read", "INBOX", false, 0, 0},
		{"first", "INBOX", true, 17, 4},
		{"advance", "INBOX", true, 17, 9},
		{"renumbered", "INBOX", true, 18, 1},
		{"largest", "Abuse/Done", true, 1<<32 - 1, 1<<32 - 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.set {
				if err := s.SetCursor(ctx, c.mailbox, c.uv, c.uid); err != nil {
					t.Fatalf("SetCursor(%s, %d, %d) = %v", c.mailbox, c.uv, c.uid, err)
				}
			}
			uv, uid, err := s.Cursor(ctx, c.mailbox)
			if err != nil || uv != c.uv || uid != c.uid {
				t.Errorf("Cursor(%s) = %d, %d, %v, want %d, %d", c.mailbox, uv, uid, err, c.uv, c.uid)
			}
		})
	}
	if uv, uid, _ := s.Cursor(ctx, "INBOX"); uv != 18 || uid != 1 {
		t.Errorf("Cursor(INBOX) after another mailbox's SetCursor = %d, %d, want 18, 1", uv, uid)
	}
}

// AddMessages dedups exactly as AddMessage does, against stored rows and
// within the batch itself, and stores the whole batch in one go.
func TestAddMessagesBatch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	stored, _, err := s.AddMessage(ctx, Message{Mailbox: "INBOX", UIDValidity: 7, UID: 1, MessageID: "<a@x>", Raw: []byte("mail a")})
	if err != nil {
		t.Fatal(err)
	}
	batch := []Message{
		{Mailbox: "INBOX", UIDValidity: 7, UID: 1, MessageID: "<a@x>", Raw: []byte("mail a")},              // 0: stored row, same position
		{Mailbox: "INBOX", UIDValidity: 7, UID: 2, MessageID: "<b@x>", Raw: []byte("mail b")},              // 1: new
		{Mailbox: "INBOX", UIDValidity: 7, UID: 2, MessageID: "<other@x>", Raw: []byte("?")},               // 2: same position as 1
		{Mailbox: "INBOX", UIDValidity: 8, UID: 9, MessageID: "<b@x>", Raw: []byte("mail b")},              // 3: same content as 1
		{Mailbox: "INBOX", UIDValidity: 7, UID: 3, MessageID: "<b@x>", Raw: []byte("forged b")},            // 4: new (other bytes)
		{Mailbox: "Junk", UIDValidity: 1, UID: 5, MessageID: "<a@x>", Raw: []byte("mail a")},               // 5: stored row, same content
		{MessageID: "<cli@x>", Raw: []byte("from a file")},                                                 // 6: new, no UID
		{MessageID: "<cli@x>", Raw: []byte("from a file")},                                                 // 7: same as 6
		{Mailbox: "INBOX", UIDValidity: 7, UID: 4, Raw: []byte("no id"), Status: StatusIgnored, Note: "x"}, // 8: new
	}
	got, err := s.AddMessages(ctx, batch)
	if err != nil {
		t.Fatalf("AddMessages = %v", err)
	}
	if len(got) != len(batch) {
		t.Fatalf("AddMessages returned %d results for %d mails", len(got), len(batch))
	}
	wantDup := []bool{true, false, true, true, false, true, false, true, false}
	for i, a := range got {
		if a.Dup != wantDup[i] {
			t.Errorf("mail %d: dup %v, want %v", i, a.Dup, wantDup[i])
		}
	}
	for i, same := range map[int]int64{0: stored, 2: got[1].ID, 3: got[1].ID, 5: stored, 7: got[6].ID} {
		if got[i].ID != same {
			t.Errorf("mail %d: id %d, want the earlier row %d", i, got[i].ID, same)
		}
	}
	ids := map[int64]bool{stored: true}
	for _, i := range []int{1, 4, 6, 8} {
		if ids[got[i].ID] {
			t.Errorf("mail %d: id %d is not a new row", i, got[i].ID)
		}
		ids[got[i].ID] = true
	}
	if n := countMessages(t, s); n != 5 {
		t.Errorf("%d messages stored, want 5", n)
	}
	m, err := s.Message(ctx, got[8].ID)
	if err != nil || m.Status != StatusIgnored || m.Note != "x" || m.FetchedAt.IsZero() {
		t.Errorf("Message(%d) = %+v, %v; want ignored with its note and a fetch time", got[8].ID, m, err)
	}

	// The same batch again is all duplicates and stores nothing.
	again, err := s.AddMessages(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range again {
		if !a.Dup {
			t.Errorf("second run, mail %d: not a duplicate", i)
		}
	}
	if n := countMessages(t, s); n != 5 {
		t.Errorf("%d messages stored after the same batch again, want 5", n)
	}
	if got, err := s.AddMessages(ctx, nil); got != nil || err != nil {
		t.Errorf("AddMessages(nil) = %v, %v; want nothing", got, err)
	}
}

// A batch that fails part-way leaves nothing behind: the mails before the
// failure are rolled back with it, so the watcher may mark none of them
// handled and a refetch stores each once.
func TestAddMessagesFailedBatchLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	// The writer pool is one connection, so a temp trigger on it fails
	// exactly the inserts of this store.
	if _, err := s.w.ExecContext(ctx, `CREATE TEMP TRIGGER boom BEFORE INSERT ON messages
		WHEN NEW.message_id = '<boom@x>' BEGIN SELECT RAISE(ABORT, 'disk on fire (test)'); END`); err != nil {
		t.Fatal(err)
	}
	batch := []Message{
		{Mailbox: "INBOX", UIDValidity: 1, UID: 1, MessageID: "<m1@x>", Raw: []byte("1")},
		{Mailbox: "INBOX", UIDValidity: 1, UID: 2, MessageID: "<m2@x>", Raw: []byte("2")},
		{Mailbox: "INBOX", UIDValidity: 1, UID: 3, MessageID: "<boom@x>", Raw: []byte("3")},
		{Mailbox: "INBOX", UIDValidity: 1, UID: 4, MessageID: "<m4@x>", Raw: []byte("4")},
	}
	if _, err := s.AddMessages(ctx, batch); err == nil || !strings.Contains(err.Error(), "INBOX/1/3 <boom@x>") {
		t.Fatalf("AddMessages = %v, want the failure naming uid 3", err)
	}
	if n := countMessages(t, s); n != 0 {
		t.Fatalf("%d messages stored after a failed batch, want 0", n)
	}
	if _, err := s.AddMessages(ctx, []Message{{Mailbox: "INBOX", UIDValidity: 1, UID: 9, Status: "bogus"}}); err == nil {
		t.Error("AddMessages(unknown status) = nil, want an error")
	}
	if _, err := s.w.ExecContext(ctx, `DROP TRIGGER temp.boom`); err != nil {
		t.Fatal(err)
	}
	got, err := s.AddMessages(ctx, batch)
	if err != nil {
		t.Fatalf("AddMessages after the fault = %v", err)
	}
	for i, a := range got {
		if a.Dup {
			t.Errorf("mail %d: dup after a rolled-back batch, want new", i)
		}
	}
	if n := countMessages(t, s); n != 4 {
		t.Errorf("%d messages stored, want 4", n)
	}
}

func countMessages(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.r.QueryRowContext(context.Background(), `SELECT count(*) FROM messages`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
