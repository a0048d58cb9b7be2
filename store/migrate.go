package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by Open for a file whose schema version is
// above the last migration this program knows: a downgraded daemon must stop
// rather than misread (or overwrite) state it does not understand.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// migrations are applied in order, each in its own transaction together
// with PRAGMA user_version = its index + 1. Append only: never edit or
// reorder a migration that has shipped.
//
// Conventions: times are INTEGER Unix nanoseconds (UTC), NULL when unknown;
// raw mail is BLOB; an optional case reference is NULL, never the empty string.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE messages (
	id           INTEGER PRIMARY KEY,
	mailbox      TEXT    NOT NULL,
	uid_validity INTEGER NOT NULL,
	uid          INTEGER NOT NULL,            -- 0: not fetched over IMAP (a file given to the CLI)
	message_id   TEXT    NOT NULL,            -- with <>, '' when absent
	sha256       BLOB    NOT NULL,            -- of raw
	raw          BLOB    NOT NULL,
	fetched_at   INTEGER NOT NULL,
	status       TEXT    NOT NULL CHECK (status IN ('pending', 'handled', 'ignored', 'failed')),
	case_id      TEXT    NOT NULL DEFAULT '',
	note         TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX messages_imap ON messages (mailbox, uid_validity, uid) WHERE uid <> 0;
CREATE UNIQUE INDEX messages_content ON messages (message_id, sha256);
CREATE INDEX messages_status ON messages (status, id);

CREATE TABLE cursors (
	mailbox      TEXT    PRIMARY KEY,
	uid_validity INTEGER NOT NULL,
	last_uid     INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE cases (
	id                TEXT    PRIMARY KEY,   -- the AWS case ID
	state             TEXT    NOT NULL,
	account_id        TEXT    NOT NULL,
	type              TEXT    NOT NULL,
	activity          TEXT    NOT NULL,
	reply_by          INTEGER,
	notice            TEXT    NOT NULL,      -- JSON, see noticeRecord
	notice_message_id TEXT    NOT NULL,
	urgent            INTEGER NOT NULL CHECK (urgent IN (0, 1)),
	plan_hash         TEXT    NOT NULL,
	admin_note        TEXT    NOT NULL,
	approver          TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX cases_state ON cases (state, created_at);
CREATE INDEX cases_created ON cases (created_at);

CREATE TABLE transitions (
	seq        INTEGER PRIMARY KEY,
	case_id    TEXT    NOT NULL REFERENCES cases (id),
	from_state TEXT    NOT NULL,               -- '' for the creation
	to_state   TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	at         INTEGER NOT NULL
) STRICT;
CREATE INDEX transitions_case ON transitions (case_id, seq);

CREATE TABLE notices (
	seq        INTEGER PRIMARY KEY,
	case_id    TEXT    NOT NULL REFERENCES cases (id),
	message_id INTEGER REFERENCES messages (id),  -- NULL: not from a stored mail
	stage      TEXT    NOT NULL,
	notice     TEXT    NOT NULL,                   -- JSON, see noticeRecord
	at         INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX notices_message ON notices (case_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX notices_case ON notices (case_id, seq);

CREATE TABLE effects (
	key     TEXT    PRIMARY KEY,
	case_id TEXT    REFERENCES cases (id),
	kind    TEXT    NOT NULL,
	detail  TEXT    NOT NULL,
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX effects_case ON effects (case_id, at);

CREATE TABLE outbox (
	key          TEXT    PRIMARY KEY,
	case_id      TEXT    REFERENCES cases (id),
	kind         TEXT    NOT NULL,
	message_id   TEXT    NOT NULL,
	from_addr    TEXT    NOT NULL,
	to_addrs     TEXT    NOT NULL,             -- JSON array
	raw          BLOB    NOT NULL,
	status       TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	sent_at      INTEGER
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt);
CREATE INDEX outbox_case ON outbox (case_id, created_at);
`,
	// 2: analyses, kept whole so that the summary, the reply and
	// `cases show` say what the analysis saw at the time.
	`
CREATE TABLE analyses (
	seq     INTEGER PRIMARY KEY,
	case_id TEXT    NOT NULL REFERENCES cases (id),
	verdict TEXT    NOT NULL,
	doc     TEXT    NOT NULL,             -- JSON, the analyze --json object
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX analyses_case ON analyses (case_id, seq);
`,
	// 3: blocks, one row per remediation action, keyed by the action key:
	// the intent is written before the backend is called and the outcome
	// after, so a restart finds what was (maybe) done and unblock finds
	// what to undo, with the state before the change.
	`
CREATE TABLE blocks (
	key          TEXT    PRIMARY KEY,           -- the action key, "<case>:nacl:<acl>:<cidr>:<proto>:<port>"
	case_id      TEXT    NOT NULL REFERENCES cases (id),
	kind         TEXT    NOT NULL,
	action       TEXT    NOT NULL,              -- JSON, remediate.Action
	state        TEXT    NOT NULL CHECK (state IN ('applying', 'applied', 'verified', 'failed', 'removing', 'removed')),
	before       TEXT    NOT NULL,              -- JSON from the backend, '' until known
	after        TEXT    NOT NULL,              -- JSON from the backend, '' until known
	calls        TEXT    NOT NULL,              -- JSON array of the calls made
	check_detail TEXT    NOT NULL,              -- the last verification's detail
	created_at   INTEGER NOT NULL,
	applied_at   INTEGER,
	verified_at  INTEGER,                       -- the last verification that held
	checked_at   INTEGER,                       -- the last verification, held or not
	expires_at   INTEGER,                       -- NULL: never expires
	removed_at   INTEGER,
	last_error   TEXT    NOT NULL
) STRICT;
CREATE INDEX blocks_case ON blocks (case_id, created_at);
CREATE INDEX blocks_state ON blocks (state, expires_at);
`,
	// 4: effects found by kind (additional reports waiting for a block) at
	// every pass of the case loop.
	`
CREATE INDEX effects_kind ON effects (kind);
`,
}

// SchemaVersion is the schema version this program writes: the number of
// migrations it knows.
func SchemaVersion() int { return len(migrations) }

// migrate brings db up to len(migs), one migration per transaction, so a
// crash between two leaves a consistent file at a known version. db must be
// the write pool: its BEGIN IMMEDIATE makes two processes starting at once
// apply each migration exactly once.
func migrate(ctx context.Context, db *sql.DB, migs []string) error {
	for {
		done, err := migrateStep(ctx, db, migs)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next migration, or reports done when the file is
// current.
func migrateStep(ctx context.Context, db *sql.DB, migs []string) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, fmt.Errorf("migrate: read user_version: %w", err)
	}
	switch {
	case v > len(migs):
		return false, fmt.Errorf("schema version %d, this program knows up to %d: %w", v, len(migs), ErrSchemaTooNew)
	case v == len(migs):
		return true, nil
	case v < 0:
		return false, fmt.Errorf("migrate: negative user_version %d", v)
	}
	if _, err := tx.ExecContext(ctx, migs[v]); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", v+1, err)
	}
	// PRAGMA takes no bound parameters; v+1 is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return false, fmt.Errorf("migrate to version %d: set user_version: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to version %d: commit: %w", v+1, err)
	}
	return false, nil
}
