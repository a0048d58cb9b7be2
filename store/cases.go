package store

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// Case is one AWS abuse case as the daemon tracks it. Its State changes only
// through CreateCase and Tx.Transition, so that every change is in the
// transition history; the other fields are updated with SaveCase.
type Case struct {
	ID        string // the AWS case ID
	State     abuse.State
	AccountID string
	Type      abuse.Type
	Activity  string
	// ReplyBy is AWS's deadline; zero when unknown.
	ReplyBy time.Time
	// Notice is the first notice of the case, every field kept (Evidence,
	// ReplyTo and References included). Follow-ups are in Tx.Notices.
	Notice abuse.Notice
	// NoticeMessageID is the Message-ID of that notice: the reply is
	// threaded on it.
	NoticeMessageID string
	// Urgent marks an escalated case (final notice, AWS-applied block).
	Urgent bool
	// PlanHash is what the current approval token binds to: a confirm for
	// an older plan does not count.
	PlanHash string
	// AdminNote holds the lines after "confirm", quoted in the reply.
	AdminNote string
	// Approver is who confirmed or rejected.
	Approver string
	// CreatedAt and UpdatedAt default to the time of the transaction that
	// wrote the case; UpdatedAt moves with every SaveCase and Transition.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CaseFilter selects cases for Tx.Cases. An empty States means every state.
type CaseFilter struct {
	States []abuse.State
}

// Transition is one recorded change of a case's state: the audit trail that
// `cases show` prints and that proves when and why a case was blocked,
// approved and replied to.
type Transition struct {
	CaseID string
	From   abuse.State // "" for the creation
	To     abuse.State
	Reason string
	At     time.Time
}

const caseColumns = `id, state, account_id, type, activity, reply_by, notice, notice_message_id,
	urgent, plan_hash, admin_note, approver, created_at, updated_at`

func scanCase(row scanner) (Case, error) {
	var (
		c                         Case
		state, typ, notice        string
		replyBy, created, updated sql.NullInt64
	)
	err := row.Scan(&c.ID, &state, &c.AccountID, &typ, &c.Activity, &replyBy, &notice,
		&c.NoticeMessageID, &c.Urgent, &c.PlanHash, &c.AdminNote, &c.Approver, &created, &updated)
	if err != nil {
		return Case{}, err
	}
	c.State, c.Type = abuse.State(state), abuse.Type(typ)
	c.ReplyBy, c.CreatedAt, c.UpdatedAt = fromNanos(replyBy), fromNanos(created), fromNanos(updated)
	if c.Notice, err = decodeNotice(notice); err != nil {
		return Case{}, fmt.Errorf("case %s: %w", c.ID, err)
	}
	return c, nil
}

// Case returns the case id and whether it exists; a missing case is not an
// error because a new notice is expected to find none.
func (tx *Tx) Case(id string) (Case, bool, error) {
	c, err := scanCase(tx.queryRow(`SELECT `+caseColumns+` FROM cases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Case{}, false, nil
	}
	if err != nil {
		return Case{}, false, fmt.Errorf("case %s: %w", id, err)
	}
	return c, true, nil
}

// Cases returns the cases in the states of f (all when f.States is empty),
// oldest first, so the daemon works on cases in the order they came.
func (tx *Tx) Cases(f CaseFilter) ([]Case, error) {
	q := `SELECT ` + caseColumns + ` FROM cases`
	var args []any
	if len(f.States) > 0 {
		q += ` WHERE state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	q += ` ORDER BY created_at, id`
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("cases %v: %w", f.States, err)
	}
	defer rows.Close()
	var out []Case
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("cases %v: %w", f.States, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cases %v: %w", f.States, err)
	}
	return out, nil
}

// CreateCase inserts c in state c.State and records the transition
// "" → c.State with reason. It fails with ErrExists when the case is stored
// already: a follow-up joins the existing case with AddNotice instead.
// CreatedAt and UpdatedAt default to the transaction's time.
func (tx *Tx) CreateCase(c Case, reason string) error {
	what := "create case " + c.ID
	if c.ID == "" {
		return fmt.Errorf("%s: empty case ID", what)
	}
	if c.State == "" {
		return fmt.Errorf("%s: empty state", what)
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = tx.now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	notice, err := encodeNotice(c.Notice)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	res, err := tx.exec(`INSERT INTO cases (`+caseColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		c.ID, string(c.State), c.AccountID, string(c.Type), c.Activity, nanos(c.ReplyBy), notice,
		c.NoticeMessageID, c.Urgent, c.PlanHash, c.AdminNote, c.Approver,
		nanos(c.CreatedAt), nanos(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	return tx.recordTransition(c.ID, "", c.State, reason, c.CreatedAt)
}

// SaveCase writes every field of c except State and CreatedAt, and sets
// UpdatedAt to the transaction's time; State moves only through
// Transition, so that no state change escapes the history. It fails with
// ErrNotFound when the case is missing.
func (tx *Tx) SaveCase(c Case) error {
	what := "save case " + c.ID
	notice, err := encodeNotice(c.Notice)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	res, err := tx.exec(`UPDATE cases SET account_id = ?, type = ?, activity = ?, reply_by = ?,
		notice = ?, notice_message_id = ?, urgent = ?, plan_hash = ?, admin_note = ?,
		approver = ?, updated_at = ? WHERE id = ?`,
		c.AccountID, string(c.Type), c.Activity, nanos(c.ReplyBy), notice, c.NoticeMessageID,
		c.Urgent, c.PlanHash, c.AdminNote, c.Approver, nanos(tx.now), c.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return mustAffect(res, what)
}

// Transition moves case id to state to and records the move (from the
// current state, at the transaction's time, with reason). It fails with
// ErrNotFound when the case is missing. Whether a move is allowed is the
// daemon's rule, not the store's: the store only guarantees that every move
// is recorded with the work done in the same transaction.
func (tx *Tx) Transition(id string, to abuse.State, reason string) error {
	what := fmt.Sprintf("transition case %s to %s", id, to)
	if to == "" {
		return fmt.Errorf("%s: empty state", what)
	}
	var from string
	err := tx.queryRow(`SELECT state FROM cases WHERE id = ?`, id).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := tx.exec(`UPDATE cases SET state = ?, updated_at = ? WHERE id = ?`,
		string(to), nanos(tx.now), id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return tx.recordTransition(id, abuse.State(from), to, reason, tx.now)
}

func (tx *Tx) recordTransition(id string, from, to abuse.State, reason string, at time.Time) error {
	_, err := tx.exec(`INSERT INTO transitions (case_id, from_state, to_state, reason, at)
		VALUES (?, ?, ?, ?, ?)`, id, string(from), string(to), reason, nanos(at))
	if err != nil {
		return fmt.Errorf("record transition of case %s %q → %q: %w", id, from, to, err)
	}
	return nil
}

// Transitions returns the history of case id, oldest first; empty for an
// unknown case.
func (tx *Tx) Transitions(id string) ([]Transition, error) {
	rows, err := tx.query(`SELECT from_state, to_state, reason, at FROM transitions
		WHERE case_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("transitions of case %s: %w", id, err)
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var (
			from, to string
			at       sql.NullInt64
			t        = Transition{CaseID: id}
		)
		if err := rows.Scan(&from, &to, &t.Reason, &at); err != nil {
			return nil, fmt.Errorf("transitions of case %s: %w", id, err)
		}
		t.From, t.To, t.At = abuse.State(from), abuse.State(to), fromNanos(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("transitions of case %s: %w", id, err)
	}
	return out, nil
}
