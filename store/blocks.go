package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// BlockState is where one remediation action stands.
type BlockState string

// The block states. A block moves applying → applied → verified (or
// failed), and on unblock or expiry removing → removed. A crash leaves it
// in applying or removing: the intent is recorded, the outcome is not, and
// the next apply or unblock finishes it through the backend's idempotency.
const (
	BlockApplying BlockState = "applying" // the backend is (or was, before a crash) being called
	BlockApplied  BlockState = "applied"  // the backend returned; not verified yet
	BlockVerified BlockState = "verified" // the last verification held
	BlockFailed   BlockState = "failed"   // the last verification did not hold, or could not run
	BlockRemoving BlockState = "removing" // the undo is (or was, before a crash) being called
	BlockRemoved  BlockState = "removed"  // undone
)

func (st BlockState) valid() bool {
	switch st {
	case BlockApplying, BlockApplied, BlockVerified, BlockFailed, BlockRemoving, BlockRemoved:
		return true
	}
	return false
}

// Block is the record of one remediation action, keyed by the action's
// stable key. The store keeps Action, Before and After opaque: the
// remediate package and its backends own their shape.
type Block struct {
	Key    string
	CaseID string // must name a stored case
	Kind   string
	Action []byte // JSON of the action
	State  BlockState
	// Before and After are the backend's record of the state before and
	// after the change; Before is what unblock restores. Empty until known.
	Before []byte
	After  []byte
	Calls  []string // the calls made
	// Check is the detail of the last verification.
	Check string
	// CreatedAt defaults to the time of the transaction that first wrote
	// the block; it is kept when the block is written again.
	CreatedAt  time.Time
	AppliedAt  time.Time
	VerifiedAt time.Time // the last verification that held
	CheckedAt  time.Time // the last verification, held or not
	ExpiresAt  time.Time // zero: never expires
	RemovedAt  time.Time
	LastError  string
}

// BlockFilter selects blocks for Tx.Blocks. An empty CaseID means every
// case; an empty States means every state.
type BlockFilter struct {
	CaseID string
	States []BlockState
}

const blockColumns = `key, case_id, kind, action, state, before, after, calls, check_detail,
	created_at, applied_at, verified_at, checked_at, expires_at, removed_at, last_error`

func scanBlock(row scanner) (Block, error) {
	var (
		b                                   Block
		action, state, before, after, calls string
		created, applied, verified, checked sql.NullInt64
		expires, removed                    sql.NullInt64
	)
	err := row.Scan(&b.Key, &b.CaseID, &b.Kind, &action, &state, &before, &after, &calls,
		&b.Check, &created, &applied, &verified, &checked, &expires, &removed, &b.LastError)
	if err != nil {
		return Block{}, err
	}
	if err := json.Unmarshal([]byte(calls), &b.Calls); err != nil {
		return Block{}, fmt.Errorf("block %s: calls: %w", b.Key, err)
	}
	b.State = BlockState(state)
	b.Action, b.Before, b.After = []byte(action), bytesOrNil(before), bytesOrNil(after)
	b.CreatedAt, b.AppliedAt, b.VerifiedAt = fromNanos(created), fromNanos(applied), fromNanos(verified)
	b.CheckedAt, b.ExpiresAt, b.RemovedAt = fromNanos(checked), fromNanos(expires), fromNanos(removed)
	return b, nil
}

// bytesOrNil keeps "unknown" distinguishable from an empty JSON value for
// the caller: an empty column is a nil slice here.
func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// PutBlock writes b whole, inserting it or replacing the stored block with
// the same key (whose CreatedAt is kept). CreatedAt defaults to the
// transaction's time. This is how the intent (applying) and the outcome
// (applied, with Before, After and Calls) are recorded.
func (tx *Tx) PutBlock(b Block) error {
	what := "put block " + b.Key
	switch {
	case b.Key == "":
		return errors.New("put block: empty key")
	case b.CaseID == "":
		return fmt.Errorf("%s: empty case ID", what)
	case !b.State.valid():
		return fmt.Errorf("%s: invalid state %q", what, b.State)
	case len(b.Action) == 0:
		return fmt.Errorf("%s: empty action", what)
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = tx.now
	}
	calls := b.Calls
	if calls == nil {
		calls = []string{} // "[]", never "null", in the file
	}
	callsJSON, err := json.Marshal(calls)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_, err = tx.exec(`INSERT INTO blocks (`+blockColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			case_id = excluded.case_id, kind = excluded.kind, action = excluded.action,
			state = excluded.state, before = excluded.before, after = excluded.after,
			calls = excluded.calls, check_detail = excluded.check_detail,
			applied_at = excluded.applied_at, verified_at = excluded.verified_at,
			checked_at = excluded.checked_at, expires_at = excluded.expires_at,
			removed_at = excluded.removed_at, last_error = excluded.last_error`,
		b.Key, b.CaseID, b.Kind, string(b.Action), string(b.State), string(b.Before), string(b.After),
		string(callsJSON), b.Check, nanos(b.CreatedAt), nanos(b.AppliedAt), nanos(b.VerifiedAt),
		nanos(b.CheckedAt), nanos(b.ExpiresAt), nanos(b.RemovedAt), b.LastError)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Block returns the block stored under key, and whether there is one; a
// missing block is not an error because a new action is expected to find
// none.
func (tx *Tx) Block(key string) (Block, bool, error) {
	b, err := scanBlock(tx.queryRow(`SELECT `+blockColumns+` FROM blocks WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, false, nil
	}
	if err != nil {
		return Block{}, false, fmt.Errorf("block %s: %w", key, err)
	}
	return b, true, nil
}

// Blocks returns the blocks that f selects, oldest first (in the order
// they were first written), so that unblock can undo them newest first.
func (tx *Tx) Blocks(f BlockFilter) ([]Block, error) {
	what := fmt.Sprintf("blocks of case %q in %v", f.CaseID, f.States)
	q := `SELECT ` + blockColumns + ` FROM blocks WHERE 1 = 1`
	var args []any
	if f.CaseID != "" {
		q += ` AND case_id = ?`
		args = append(args, f.CaseID)
	}
	if len(f.States) > 0 {
		q += ` AND state IN (?` + strings.Repeat(`, ?`, len(f.States)-1) + `)`
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	q += ` ORDER BY created_at, rowid`
	rows, err := tx.query(q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Block
	for rows.Next() {
		b, err := scanBlock(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// SetBlockState moves block key to st and replaces its LastError with
// errText ("" clears it). When the block enters applied or removed, the
// state's time (AppliedAt, RemovedAt) is set to at, or to the transaction's
// time when at is zero; setting the state it is in already keeps that time,
// so recording an error does not move it. A missing block gives
// ErrNotFound.
func (tx *Tx) SetBlockState(key string, st BlockState, errText string, at time.Time) error {
	what := fmt.Sprintf("set block %s %s", key, st)
	if !st.valid() {
		return fmt.Errorf("%s: invalid state", what)
	}
	if at.IsZero() {
		at = tx.now
	}
	// In an UPDATE, every expression sees the row as it was: "state" in the
	// CASE is the state before this change.
	q := `UPDATE blocks SET state = ?, last_error = ?`
	args := []any{string(st), errText}
	switch st {
	case BlockApplied:
		q += `, applied_at = CASE WHEN state = ? THEN applied_at ELSE ? END`
		args = append(args, string(st), nanos(at))
	case BlockRemoved:
		q += `, removed_at = CASE WHEN state = ? THEN removed_at ELSE ? END`
		args = append(args, string(st), nanos(at))
	}
	res, err := tx.exec(q+` WHERE key = ?`, append(args, key)...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return mustAffect(res, what)
}

// RecordBlockCheck records a verification of block key at at (the
// transaction's time when zero): its detail, CheckedAt, and VerifiedAt when
// it held. It does not change the state, so that drift found by a
// reconciliation is recorded without deciding what to do about it.
func (tx *Tx) RecordBlockCheck(key string, holds bool, detail string, at time.Time) error {
	what := "record check of block " + key
	if at.IsZero() {
		at = tx.now
	}
	q := `UPDATE blocks SET check_detail = ?, checked_at = ?`
	args := []any{detail, nanos(at)}
	if holds {
		q += `, verified_at = ?`
		args = append(args, nanos(at))
	}
	res, err := tx.exec(q+` WHERE key = ?`, append(args, key)...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return mustAffect(res, what)
}

// ExtendBlock sets the expiry of block key to until (zero: never expires):
// a block whose abuse goes on is kept for another period.
func (tx *Tx) ExtendBlock(key string, until time.Time) error {
	what := "extend block " + key
	res, err := tx.exec(`UPDATE blocks SET expires_at = ? WHERE key = ?`, nanos(until), key)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return mustAffect(res, what)
}
