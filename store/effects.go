package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Effect is the record that a side effect happened (a block applied, a
// summary composed, an approval used). Its Key names the effect so that the
// daemon can look before acting and never do it twice across a restart:
// "<case>:summary:1", "<case>:reply", "<case>:approval:<hash>",
// "<case>:nacl:<acl>:<cidr>".
type Effect struct {
	Key    string
	CaseID string // "" for an effect that belongs to no case
	Kind   string
	Detail string
	At     time.Time
}

// Effect returns the effect recorded under key, and whether there is one.
func (tx *Tx) Effect(key string) (Effect, bool, error) {
	var (
		e      = Effect{Key: key}
		caseID sql.NullString
		at     sql.NullInt64
	)
	err := tx.queryRow(`SELECT case_id, kind, detail, at FROM effects WHERE key = ?`, key).
		Scan(&caseID, &e.Kind, &e.Detail, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Effect{}, false, nil
	}
	if err != nil {
		return Effect{}, false, fmt.Errorf("effect %s: %w", key, err)
	}
	e.CaseID, e.At = caseID.String, fromNanos(at)
	return e, true, nil
}

// RecordEffect records e (At defaults to the transaction's time) and
// reports whether it was new. A key is single use: when it exists already
// nothing changes and inserted is false, which is how an approval token is
// honoured once and only once.
func (tx *Tx) RecordEffect(e Effect) (inserted bool, err error) {
	if e.Key == "" {
		return false, errors.New("record effect: empty key")
	}
	if e.At.IsZero() {
		e.At = tx.now
	}
	res, err := tx.exec(`INSERT INTO effects (key, case_id, kind, detail, at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		e.Key, nullString(e.CaseID), e.Kind, e.Detail, nanos(e.At))
	if err != nil {
		return false, fmt.Errorf("record effect %s: %w", e.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record effect %s: %w", e.Key, err)
	}
	return n == 1, nil
}

// Effects returns the effects of case caseID ("" for those of no case) in
// the order they were recorded: what `unblock` must undo, and the audit
// trail `cases show` prints.
func (tx *Tx) Effects(caseID string) ([]Effect, error) {
	return tx.effects("effects of case "+caseID, `WHERE case_id IS ?`, nullString(caseID))
}

// EffectsOfKind returns the effects of one kind across all cases, in the
// order they were recorded: how the daemon finds work marked by an effect
// (an additional report waiting for its block) without a query per case.
func (tx *Tx) EffectsOfKind(kind string) ([]Effect, error) {
	return tx.effects("effects of kind "+kind, `WHERE kind = ?`, kind)
}

func (tx *Tx) effects(what, where string, arg any) ([]Effect, error) {
	rows, err := tx.query(`SELECT key, case_id, kind, detail, at FROM effects `+where+` ORDER BY rowid`, arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Effect
	for rows.Next() {
		var (
			e      Effect
			caseID sql.NullString
			at     sql.NullInt64
		)
		if err := rows.Scan(&e.Key, &caseID, &e.Kind, &e.Detail, &at); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		e.CaseID, e.At = caseID.String, fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
