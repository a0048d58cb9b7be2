package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Tx is one transaction, handed to the function given to Update or View.
// Its methods take no context: they run under the context of the Update or
// View call. A Tx must not be kept or used after that function returns, nor
// shared between goroutines.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
	now time.Time // one clock reading per transaction: all its rows agree
}

// Update runs fn in a write transaction (BEGIN IMMEDIATE) and commits when
// fn returns nil; when fn returns an error or panics, everything it wrote is
// rolled back and the error (or panic) is passed on. This is how a case
// transition is written together with the work it records: the transition,
// the effect key and the queued mail land together or not at all.
//
// Update blocks while another Update (or Store write) in this process is
// running, and up to the busy timeout (5 s) for a writer in another process.
// fn must use only tx: calling a Store write method from fn deadlocks.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, s.w, nil, fn)
}

// View runs fn in a read transaction: it sees one consistent snapshot, never
// waits for writers (WAL), and fails if fn tries to write.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	return s.run(ctx, s.r, &sql.TxOptions{ReadOnly: true}, fn)
}

func (s *Store) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*Tx) error) (err error) {
	sqlTx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			// The original error (or panic) matters, not the rollback's.
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(&Tx{ctx: ctx, tx: sqlTx, now: s.nowUTC()}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	committed = true
	return nil
}

func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(tx.ctx, query, args...)
}

func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(tx.ctx, query, args...)
}

func (tx *Tx) queryRow(query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(tx.ctx, query, args...)
}

// SetMessageStatus records what became of a fetched mail in the same
// transaction as the case work it led to, so a crash cannot leave a mail
// handled twice or lost between "case written" and "mail marked".
func (tx *Tx) SetMessageStatus(id int64, st MessageStatus, caseID, note string) error {
	return setMessageStatus(tx.ctx, tx.tx, id, st, caseID, note)
}

// execer is what *sql.DB and *sql.Tx share for one-statement writes.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// mustAffect turns "no row matched" into ErrNotFound for what names a row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}
