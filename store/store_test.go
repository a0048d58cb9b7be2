package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// openTest opens a store in a fresh directory and closes it with the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return s
}

// clock makes the store's time step by a second per reading, so that rows
// written one after another have distinct, predictable times.
func clock(s *Store, start time.Time) {
	t := start
	s.now = func() time.Time { t = t.Add(time.Second); return t }
}

func update(t *testing.T, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update = %v", err)
	}
}

func view(t *testing.T, s *Store, fn func(*Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("View = %v", err)
	}
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s = %v", name, err)
	}
	return v
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var lib", "a#b?c%20") // URI-hostile on purpose
	path := filepath.Join(dir, "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	defer s.Close()
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })

	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatalf("Stat(%s) = %v", c.path, err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("Stat(%s).Mode() = %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	for _, c := range []struct{ db, name, pragma, want string }{
		{"w", "writer", "journal_mode", "wal"},
		{"w", "writer", "synchronous", "2"},
		{"w", "writer", "foreign_keys", "1"},
		{"w", "writer", "busy_timeout", "5000"},
		{"r", "reader", "query_only", "1"},
		{"r", "reader", "busy_timeout", "5000"},
		{"r", "reader", "journal_mode", "wal"},
	} {
		db := s.w
		if c.db == "r" {
			db = s.r
		}
		if got := pragma(t, db, c.pragma); got != c.want {
			t.Errorf("%s PRAGMA %s = %s, want %s", c.name, c.pragma, got, c.want)
		}
	}
}

func TestOpenTightensLooseFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	s.Close()
	if fi, _ := os.Stat(path); fi.Mode() != 0o600 {
		t.Errorf("Open(existing 0644 file): mode %v, want 0600", fi.Mode())
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (new file) = %v", err)
	}
	if v := pragma(t, s.w, "user_version"); v != "4" || SchemaVersion() != 4 {
		t.Errorf("user_version = %s, SchemaVersion() = %d, want 4 and 4", v, SchemaVersion())
	}
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
	s.Close()

	// Reopening a current file applies nothing and keeps the data.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (migrated file) = %v", err)
	}
	view(t, s, func(tx *Tx) error {
		if _, ok, err := tx.Case("c1"); !ok || err != nil {
			t.Errorf("Case(c1) after reopen = %v, %v, want found", ok, err)
		}
		return nil
	})

	// A migration list applied twice runs each migration once.
	migs := []string{
		`CREATE TABLE m (n INTEGER); INSERT INTO m VALUES (1)`,
		`INSERT INTO m VALUES (2)`,
	}
	db, err := openPool(ctx, filepath.Join(t.TempDir(), "m.db"), "_txlock=immediate", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 2; i++ {
		if err := migrate(ctx, db, migs); err != nil {
			t.Fatalf("migrate (run %d) = %v", i+1, err)
		}
	}
	var rows, v int
	db.QueryRow(`SELECT count(*) FROM m`).Scan(&rows)
	db.QueryRow(`PRAGMA user_version`).Scan(&v)
	if rows != 2 || v != 2 {
		t.Errorf("migrate twice: %d rows, user_version %d, want 2 and 2", rows, v)
	}

	// A failing migration leaves the file at the previous version.
	bad := append(migs, `INSERT INTO m VALUES (3); INSERT INTO nosuch VALUES (1)`)
	if err := migrate(ctx, db, bad); err == nil {
		t.Errorf("migrate(bad third migration) = nil, want error")
	}
	db.QueryRow(`SELECT count(*) FROM m`).Scan(&rows)
	db.QueryRow(`PRAGMA user_version`).Scan(&v)
	if rows != 2 || v != 2 {
		t.Errorf("after failed migration: %d rows, user_version %d, want 2 and 2", rows, v)
	}

	// A file from a newer program is refused.
	if _, err := s.w.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(ctx, path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open (user_version 99) = %v, want ErrSchemaTooNew", err)
	}
	t.Logf("Open (user_version 99) = %v", err)
}

// TestCrashSafety proves that a committed Update survives the process
// dying without Close, and that an Update cut off before its commit leaves
// nothing. The writes happen in a child process (this test binary,
// re-executed) that exits abruptly.
func TestCrashSafety(t *testing.T) {
	if os.Getenv("STORE_CRASH_PATH") != "" {
		crashChild()
		return
	}
	path := filepath.Join(t.TempDir(), "state.db")
	for _, mode := range []string{"commit", "mid-tx"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$")
		cmd.Env = append(os.Environ(), "STORE_CRASH_PATH="+path, "STORE_CRASH_MODE="+mode)
		if out, err := cmd.CombinedOutput(); err == nil || cmd.ProcessState.ExitCode() != 3 {
			t.Fatalf("child %s: %v (want exit 3)\n%s", mode, err, out)
		}
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no WAL left by the crashed child: %v", err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open after crash = %v", err)
	}
	defer s.Close()
	view(t, s, func(tx *Tx) error {
		if _, ok, err := tx.Case("committed"); !ok || err != nil {
			t.Errorf("Case(committed) after crash = %v, %v, want found", ok, err)
		}
		if _, ok, err := tx.Case("uncommitted"); ok || err != nil {
			t.Errorf("Case(uncommitted) after crash = %v, %v, want absent", ok, err)
		}
		if out, err := tx.Outbox("committed"); len(out) != 1 || err != nil {
			t.Errorf("Outbox(committed) after crash = %d mails, %v, want 1", len(out), err)
		}
		return nil
	})
}

func crashChild() {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv("STORE_CRASH_PATH"))
	if err != nil {
		os.Exit(1)
	}
	id := "committed"
	if os.Getenv("STORE_CRASH_MODE") == "mid-tx" {
		id = "uncommitted"
	}
	err = s.Update(ctx, func(tx *Tx) error {
		if err := tx.CreateCase(Case{ID: id, State: abuse.StateReceived}, "crash test"); err != nil {
			return err
		}
		if _, err := tx.Enqueue(testMail(id+":summary", id)); err != nil {
			return err
		}
		if id == "uncommitted" {
			os.Exit(3) // dies holding the write transaction
		}
		return nil
	})
	if err != nil {
		os.Exit(1)
	}
	os.Exit(3) // dies without Close
}

func TestSecondStoreSeesCommittedUpdate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(a) = %v", err)
	}
	defer a.Close()
	update(t, a, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })

	b, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(b) = %v", err)
	}
	defer b.Close()
	if err := b.View(ctx, func(tx *Tx) error {
		_, ok, err := tx.Case("c1")
		if !ok {
			t.Errorf("b: Case(c1) = absent, want the case a committed")
		}
		return err
	}); err != nil {
		t.Fatalf("b.View = %v", err)
	}
}

// TestUpgradeFromV1 opens a file written by the first release (schema 1,
// with a case in it) and checks that the upgrade keeps the case and adds
// the analyses table.
func TestUpgradeFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := openPool(ctx, path, "_txlock=immediate", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatalf("migrate to v1 = %v", err)
	}
	if _, err := db.Exec(`INSERT INTO cases (id, state, account_id, type, activity, notice, notice_message_id,
		urgent, plan_hash, admin_note, approver, created_at, updated_at) VALUES ('c1', 'received', '', '', '', '{}', '', 0, '', '', '', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open (v1 file) = %v", err)
	}
	defer s.Close()
	update(t, s, func(tx *Tx) error {
		if _, ok, err := tx.Case("c1"); !ok || err != nil {
			t.Errorf("Case(c1) after upgrade = %v, %v, want found", ok, err)
		}
		return tx.AddAnalysis(Analysis{CaseID: "c1", Verdict: "inconclusive", Doc: []byte(`{}`)})
	})
}
