// Package store keeps the daemon's durable state in one SQLite file: every
// mail fetched (kept whole as evidence), the IMAP cursor, cases with their
// transition history, the side-effect log and the outbox. A crash at any
// point must resume from this file without a second block, summary or
// reply, so a case transition is written in the same transaction as the
// work it records (see Update).
//
// # Connections
//
// A Store holds two connection pools on the same file. Writes go through a
// pool of exactly one connection whose transactions begin with BEGIN
// IMMEDIATE: inside the process, writers queue in database/sql for that one
// connection instead of racing for SQLite's lock, so they never see
// SQLITE_BUSY; between processes (the daemon and a CLI `apply` or
// `approve`), the immediate lock is taken up front and busy_timeout waits
// for it, so a transaction never fails half-way on a lock upgrade. Reads go
// through a second pool of query-only connections: in WAL mode they see the
// last committed state without waiting for a writer, and a View cannot
// write by mistake.
//
// The one rule this imposes: the function given to Update must use only its
// *Tx. A Store write method called from inside it waits for the connection
// that Update holds, forever.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a message, case or outbox row that the caller
// names does not exist, so callers can tell "absent" from a broken database.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by CreateCase for a case ID that is stored already:
// a follow-up notice must join the case, never replace it.
var ErrExists = errors.New("already exists")

// Store is the daemon's state file. It is safe for concurrent use; see the
// package documentation for how writers are serialised.
type Store struct {
	path string
	w    *sql.DB // one connection, BEGIN IMMEDIATE: every write
	r    *sql.DB // query-only connections: every read
	now  func() time.Time
}

// readers bounds the read pool; reads are short and a daemon has few
// concurrent readers (the loop, the outbox sender, a metrics scrape).
const readers = 4

// Open opens the state file at path, creating it (mode 0600) and its parent
// directory (0700) when missing, and brings the schema up to date. A file
// written by a newer program is refused with ErrSchemaTooNew rather than
// being misread.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	w, err := openPool(ctx, abs, "_txlock=immediate", 1)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := migrate(ctx, w, migrations); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	r, err := openPool(ctx, abs, "_pragma=query_only(1)", readers)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return &Store{path: abs, w: w, r: r, now: time.Now}, nil
}

// Close releases both pools. Committed transactions are already durable
// (synchronous=FULL); Close only checkpoints and tidies the WAL.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Path is the absolute path of the state file, for log lines and errors.
func (s *Store) Path() string { return s.path }

// prepareFile creates the parent directory and an empty file with mode 0600
// before SQLite sees the path, so raw mail never sits in a world-readable
// file. SQLite gives the -wal and -shm files the database file's mode.
func prepareFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}

// dsn builds the modernc URI for path. The path is escaped because SQLite
// decodes %XX and stops at ? and # in a file: URI.
func dsn(path, extra string) string {
	u := url.URL{Scheme: "file", Path: path}
	q := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	if extra != "" {
		q += "&" + extra
	}
	return u.String() + "?" + q
}

func openPool(ctx context.Context, path, extra string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, extra))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Times are stored as Unix nanoseconds (UTC by definition), which sort and
// compare as integers in SQL; a zero time.Time is stored as NULL.

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// nowUTC is the store's clock, rounded to what the file keeps, so a value
// returned before a write equals the one read back after it.
func (s *Store) nowUTC() time.Time {
	return s.now().UTC().Round(0)
}

// nullString maps "" to NULL for optional foreign keys (a case ID on an
// alert mail that belongs to no case).
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}
