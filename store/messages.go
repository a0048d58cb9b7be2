package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MessageStatus says what became of a fetched mail, so that after a restart
// the daemon handles exactly the mails it had not finished.
type MessageStatus string

// The message statuses.
const (
	// StatusPending: stored, not yet handled.
	StatusPending MessageStatus = "pending"
	// StatusHandled: the mail was turned into (or joined) case CaseID.
	StatusHandled MessageStatus = "handled"
	// StatusIgnored: not for us (not a notice, a loop, a duplicate); Note says why.
	StatusIgnored MessageStatus = "ignored"
	// StatusFailed: handling failed; Note says why.
	StatusFailed MessageStatus = "failed"
)

func (st MessageStatus) valid() bool {
	switch st {
	case StatusPending, StatusHandled, StatusIgnored, StatusFailed:
		return true
	}
	return false
}

// Message is one raw mail as fetched, kept whole (even when it cannot be
// parsed) because it is the evidence behind every decision about a case.
type Message struct {
	ID          int64
	Mailbox     string
	UIDValidity uint32
	// UID is the IMAP UID; 0 for a mail that did not come from IMAP (a file
	// handed to the CLI), which is then deduplicated by content alone.
	UID uint32
	// MessageID is the Message-ID header with <>, or "".
	MessageID string
	Raw       []byte
	FetchedAt time.Time
	Status    MessageStatus
	// CaseID is set once the mail is handled into a case.
	CaseID string
	// Note says why a mail was ignored or failed.
	Note string
}

// AddMessage stores m (status pending unless m.Status says otherwise;
// FetchedAt now if zero) unless it is stored already: the same IMAP position
// (mailbox, UIDValidity, UID) or the same MessageID with the same raw bytes.
// Then it returns the stored mail's id and dup=true, so refetching after a
// crash, or the same mail seen in two mailboxes, is handled once. The same
// Message-ID with different bytes is a different mail (a forger may reuse
// an ID) and is stored.
func (s *Store) AddMessage(ctx context.Context, m Message) (id int64, dup bool, err error) {
	res, err := s.AddMessages(ctx, []Message{m})
	if err != nil {
		return 0, false, err
	}
	return res[0].ID, res[0].Dup, nil
}

// Added is what AddMessages did with one mail: ID is the new row, or the
// stored mail it duplicates when Dup is set.
type Added struct {
	ID  int64
	Dup bool
}

// AddMessages stores ms in one transaction, each exactly as AddMessage
// would: a mail already stored, or a second copy within ms itself, is not
// stored again and comes back as Dup with the earlier row's id. The result
// has one entry per mail, in order. Either every mail is stored (one commit,
// one fsync for the whole batch: the watcher's backlog rate depends on it)
// or, on error, none is.
func (s *Store) AddMessages(ctx context.Context, ms []Message) ([]Added, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	// Refuse a bad mail before writing anything, so the error names it
	// and not the transaction.
	for _, m := range ms {
		if m.Status != "" && !m.Status.valid() {
			return nil, fmt.Errorf("add message %s: unknown status %q", messageRef(m), m.Status)
		}
	}
	out := make([]Added, len(ms))
	err := s.Update(ctx, func(tx *Tx) error {
		// Prepared once per batch: the two statements run once per mail.
		find, err := tx.tx.PrepareContext(ctx, `SELECT id FROM messages
			WHERE (uid <> 0 AND mailbox = ? AND uid_validity = ? AND uid = ?)
			   OR (message_id = ? AND sha256 = ?)
			ORDER BY id LIMIT 1`)
		if err != nil {
			return fmt.Errorf("prepare lookup: %w", err)
		}
		defer find.Close()
		insert, err := tx.tx.PrepareContext(ctx, `INSERT INTO messages
			(mailbox, uid_validity, uid, message_id, sha256, raw, fetched_at, status, case_id, note)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare insert: %w", err)
		}
		defer insert.Close()
		for i, m := range ms {
			if m.Status == "" {
				m.Status = StatusPending
			}
			if m.Raw == nil {
				m.Raw = []byte{}
			}
			if m.FetchedAt.IsZero() {
				m.FetchedAt = tx.now
			}
			sum := sha256.Sum256(m.Raw)
			// Rows inserted earlier in this transaction are visible here,
			// so a mail twice in one batch is stored once.
			var id int64
			err := find.QueryRowContext(ctx, m.Mailbox, m.UIDValidity, m.UID, m.MessageID, sum[:]).Scan(&id)
			if err == nil {
				out[i] = Added{ID: id, Dup: true}
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("look up %s: %w", messageRef(m), err)
			}
			res, err := insert.ExecContext(ctx, m.Mailbox, m.UIDValidity, m.UID, m.MessageID, sum[:], m.Raw,
				nanos(m.FetchedAt), string(m.Status), m.CaseID, m.Note)
			if err != nil {
				return fmt.Errorf("insert %s: %w", messageRef(m), err)
			}
			if id, err = res.LastInsertId(); err != nil {
				return fmt.Errorf("insert %s: %w", messageRef(m), err)
			}
			out[i] = Added{ID: id}
		}
		return nil
	})
	if err != nil {
		if len(ms) == 1 {
			return nil, fmt.Errorf("add message: %w", err)
		}
		return nil, fmt.Errorf("add %d messages: %w", len(ms), err)
	}
	return out, nil
}

// messageRef names a mail in errors: its IMAP position and Message-ID.
func messageRef(m Message) string {
	return fmt.Sprintf("%s/%d/%d %s", m.Mailbox, m.UIDValidity, m.UID, m.MessageID)
}

const messageColumns = `id, mailbox, uid_validity, uid, message_id, raw, fetched_at, status, case_id, note`

func scanMessage(row scanner) (Message, error) {
	var (
		m       Message
		fetched sql.NullInt64
		status  string
	)
	err := row.Scan(&m.ID, &m.Mailbox, &m.UIDValidity, &m.UID, &m.MessageID, &m.Raw,
		&fetched, &status, &m.CaseID, &m.Note)
	m.FetchedAt = fromNanos(fetched)
	m.Status = MessageStatus(status)
	return m, err
}

// PendingMessages returns up to limit mails not yet handled, oldest first,
// so the daemon resumes where it stopped; limit <= 0 means all.
func (s *Store) PendingMessages(ctx context.Context, limit int) ([]Message, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE status = 'pending' ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("pending messages: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("pending messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pending messages: %w", err)
	}
	return out, nil
}

// Message returns the stored mail id, or ErrNotFound; the CLI's `cases
// show` and the summary's evidence attachment read mails back this way.
func (s *Store) Message(ctx context.Context, id int64) (Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("message %d: %w", id, err)
	}
	return m, nil
}

// SetMessageStatus records what became of a mail that needed no case work
// (ignored, failed to parse). When the mail leads to case work, use
// Tx.SetMessageStatus in the same Update instead.
func (s *Store) SetMessageStatus(ctx context.Context, id int64, st MessageStatus, caseID, note string) error {
	return setMessageStatus(ctx, s.w, id, st, caseID, note)
}

func setMessageStatus(ctx context.Context, db execer, id int64, st MessageStatus, caseID, note string) error {
	what := fmt.Sprintf("set message %d status %s", id, st)
	if !st.valid() {
		return fmt.Errorf("%s: unknown status", what)
	}
	res, err := db.ExecContext(ctx,
		`UPDATE messages SET status = ?, case_id = ?, note = ? WHERE id = ?`,
		string(st), caseID, note, id)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return mustAffect(res, what)
}

// Cursor returns where fetching stopped in mailbox: the UIDVALIDITY it was
// read under and the last UID stored. It returns 0, 0 for a mailbox never
// read, so the watcher starts from the beginning. A UIDVALIDITY that differs
// from the server's means the UIDs were renumbered: refetch everything and
// let AddMessage's content check drop what is stored already.
func (s *Store) Cursor(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error) {
	err = s.r.QueryRowContext(ctx,
		`SELECT uid_validity, last_uid FROM cursors WHERE mailbox = ?`, mailbox).
		Scan(&uidValidity, &lastUID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("cursor %s: %w", mailbox, err)
	}
	return uidValidity, lastUID, nil
}

// SetCursor records that every mail of mailbox up to lastUID is stored.
// Call it only after AddMessage has returned for those mails: the cursor
// must never run ahead of the evidence.
func (s *Store) SetCursor(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO cursors (mailbox, uid_validity, last_uid, updated_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (mailbox) DO UPDATE SET
			uid_validity = excluded.uid_validity,
			last_uid = excluded.last_uid,
			updated_at = excluded.updated_at`,
		mailbox, uidValidity, lastUID, nanos(s.nowUTC()))
	if err != nil {
		return fmt.Errorf("set cursor %s %d/%d: %w", mailbox, uidValidity, lastUID, err)
	}
	return nil
}
