package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotQueued is returned by MarkSent, MarkRetry and MarkFailed for a mail
// that is no longer queued: two senders racing for one mail, or a caller
// bug, must not turn a sent mail back into one that is sent again.
var ErrNotQueued = errors.New("not queued")

// OutStatus is where an outgoing mail stands.
type OutStatus string

// The outbox statuses.
const (
	// OutQueued: waiting to be sent, or to be retried at NextAttempt.
	OutQueued OutStatus = "queued"
	// OutSent: the SMTP server accepted it.
	OutSent OutStatus = "sent"
	// OutFailed: given up for good (a permanent SMTP error); an admin looks.
	OutFailed OutStatus = "failed"
)

// OutMail is one outgoing mail, stored whole before it is sent so that a
// crash between "composed" and "sent" resends the very same message (same
// Message-ID, same approval token) instead of composing a second one.
type OutMail struct {
	// Key is the idempotency key ("<case>:reply", "<case>:summary:1"):
	// enqueuing the same key twice queues one mail.
	Key    string
	CaseID string // "" for a mail that belongs to no case (an alert)
	// Kind is "summary", "reminder", "urgent", "reply" or "alert".
	Kind string
	// MessageID is the final Message-ID with <>, fixed before sending so
	// that replies to the mail can be matched to it.
	MessageID string
	From      string
	To        []string
	// Raw is the whole RFC 5322 message exactly as it will be sent.
	Raw         []byte
	Status      OutStatus
	Attempts    int
	NextAttempt time.Time
	LastError   string
	CreatedAt   time.Time
	SentAt      time.Time // zero until sent
}

// Enqueue stores m as queued (Attempts 0; NextAttempt and CreatedAt default
// to the transaction's time) and reports whether it was new. When m.Key is
// queued or sent already, nothing changes and inserted is false: composing
// a mail again after a crash does not send it twice.
func (tx *Tx) Enqueue(m OutMail) (inserted bool, err error) {
	what := "enqueue " + m.Key
	switch {
	case m.Key == "":
		return false, errors.New("enqueue: empty key")
	case m.MessageID == "":
		return false, fmt.Errorf("%s: empty Message-ID", what)
	case len(m.To) == 0:
		return false, fmt.Errorf("%s: no recipients", what)
	case len(m.Raw) == 0:
		return false, fmt.Errorf("%s: empty message", what)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = tx.now
	}
	if m.NextAttempt.IsZero() {
		m.NextAttempt = tx.now
	}
	to, err := json.Marshal(m.To)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	res, err := tx.exec(`INSERT INTO outbox (key, case_id, kind, message_id, from_addr, to_addrs,
			raw, status, attempts, next_attempt, last_error, created_at, sent_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, '', ?, NULL)
		ON CONFLICT (key) DO NOTHING`,
		m.Key, nullString(m.CaseID), m.Kind, m.MessageID, m.From, string(to), m.Raw,
		nanos(m.NextAttempt), nanos(m.CreatedAt))
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n == 1, nil
}

const outColumns = `key, case_id, kind, message_id, from_addr, to_addrs, raw, status, attempts,
	next_attempt, last_error, created_at, sent_at`

func scanOutMail(row scanner) (OutMail, error) {
	var (
		m                     OutMail
		caseID                sql.NullString
		to, status            string
		next, created, sentAt sql.NullInt64
	)
	err := row.Scan(&m.Key, &caseID, &m.Kind, &m.MessageID, &m.From, &to, &m.Raw, &status,
		&m.Attempts, &next, &m.LastError, &created, &sentAt)
	if err != nil {
		return OutMail{}, err
	}
	if err := json.Unmarshal([]byte(to), &m.To); err != nil {
		return OutMail{}, fmt.Errorf("outbox %s: recipients: %w", m.Key, err)
	}
	m.CaseID, m.Status = caseID.String, OutStatus(status)
	m.NextAttempt, m.CreatedAt, m.SentAt = fromNanos(next), fromNanos(created), fromNanos(sentAt)
	return m, nil
}

func collectOutMail(rows *sql.Rows, err error) ([]OutMail, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutMail
	for rows.Next() {
		m, err := scanOutMail(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Outbox returns the mails of case caseID ("" for those of no case),
// oldest first, whatever their status: `cases show` and the tests read what
// was sent for a case this way.
func (tx *Tx) Outbox(caseID string) ([]OutMail, error) {
	out, err := collectOutMail(tx.query(`SELECT `+outColumns+` FROM outbox
		WHERE case_id IS ? ORDER BY created_at, rowid`, nullString(caseID)))
	if err != nil {
		return nil, fmt.Errorf("outbox of case %s: %w", caseID, err)
	}
	return out, nil
}

// DueMail returns up to limit queued mails whose NextAttempt is at or
// before now, oldest first, for the sender to try; limit <= 0 means all.
// It runs outside case transactions, so sending never holds the write lock.
func (s *Store) DueMail(ctx context.Context, now time.Time, limit int) ([]OutMail, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	out, err := collectOutMail(s.r.QueryContext(ctx, `SELECT `+outColumns+` FROM outbox
		WHERE status = 'queued' AND next_attempt <= ?
		ORDER BY created_at, rowid LIMIT ?`, now.UnixNano(), limit))
	if err != nil {
		return nil, fmt.Errorf("due mail: %w", err)
	}
	return out, nil
}

// OutMail returns the outgoing mail stored under key, or ErrNotFound.
func (s *Store) OutMail(ctx context.Context, key string) (OutMail, error) {
	m, err := scanOutMail(s.r.QueryRowContext(ctx,
		`SELECT `+outColumns+` FROM outbox WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return OutMail{}, fmt.Errorf("outbox %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return OutMail{}, fmt.Errorf("outbox %s: %w", key, err)
	}
	return m, nil
}

// MarkSent records that the SMTP server accepted mail key at at. Marking a
// sent mail again is a no-op; a failed one gives ErrNotQueued.
func (s *Store) MarkSent(ctx context.Context, key string, at time.Time) error {
	if at.IsZero() {
		at = s.nowUTC()
	}
	return s.markQueued(ctx, "mark sent "+key, key, OutSent,
		`UPDATE outbox SET status = 'sent', sent_at = ?, last_error = ''
		WHERE key = ? AND status = 'queued'`, nanos(at), key)
}

// MarkRetry records a temporary failure of mail key: Attempts grows by one,
// errText is kept, and the mail is due again at next.
func (s *Store) MarkRetry(ctx context.Context, key, errText string, next time.Time) error {
	if next.IsZero() {
		next = s.nowUTC()
	}
	return s.markQueued(ctx, "mark retry "+key, key, "",
		`UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?
		WHERE key = ? AND status = 'queued'`, errText, nanos(next), key)
}

// MarkFailed gives up on mail key for good (a permanent error, or too many
// attempts): it counts as one more attempt, errText is kept, and it is
// never due again.
func (s *Store) MarkFailed(ctx context.Context, key, errText string) error {
	return s.markQueued(ctx, "mark failed "+key, key, "",
		`UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?
		WHERE key = ? AND status = 'queued'`, errText, key)
}

// Retry is one mail's MarkRetry, for MarkRetries.
type Retry struct {
	Key     string
	ErrText string
	Next    time.Time // zero: now
}

// MarkRetries is MarkRetry for several mails with one commit: the outbox
// counts the attempt of a whole batch before sending it. Every mark is
// recorded, or on error none.
func (s *Store) MarkRetries(ctx context.Context, rs []Retry) error {
	if len(rs) == 0 {
		return nil
	}
	return s.Update(ctx, func(tx *Tx) error {
		for _, r := range rs {
			next := r.Next
			if next.IsZero() {
				next = tx.now
			}
			err := markQueuedOn(ctx, tx.tx, tx.tx, "mark retry "+r.Key, r.Key, "",
				`UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?
				WHERE key = ? AND status = 'queued'`, r.ErrText, nanos(next), r.Key)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkSentAll is MarkSent for several mails with one commit. Every mark is
// recorded, or on error none.
func (s *Store) MarkSentAll(ctx context.Context, keys []string, at time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	return s.Update(ctx, func(tx *Tx) error {
		if at.IsZero() {
			at = tx.now
		}
		for _, key := range keys {
			err := markQueuedOn(ctx, tx.tx, tx.tx, "mark sent "+key, key, OutSent,
				`UPDATE outbox SET status = 'sent', sent_at = ?, last_error = ''
				WHERE key = ? AND status = 'queued'`, nanos(at), key)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// markQueued runs an update that applies only to a queued mail, and when it
// matched nothing tells why: no such mail (ErrNotFound), already in state
// done (success: the update is idempotent), or another state (ErrNotQueued).
func (s *Store) markQueued(ctx context.Context, what, key string, done OutStatus, query string, args ...any) error {
	return markQueuedOn(ctx, s.w, s.r, what, key, done, query, args...)
}

// rowQuerier is what *sql.DB and *sql.Tx share for one-row reads.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// markQueuedOn is markQueued on given connections: the store's pools, or
// one transaction for both.
func markQueuedOn(ctx context.Context, w execer, r rowQuerier, what, key string, done OutStatus, query string, args ...any) error {
	res, err := w.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 1 {
		return nil
	}
	var status string
	err = r.QueryRowContext(ctx, `SELECT status FROM outbox WHERE key = ?`, key).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case OutStatus(status) == done:
		return nil
	}
	return fmt.Errorf("%s: status %s: %w", what, status, ErrNotQueued)
}
