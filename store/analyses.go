package store

import (
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Analysis is one recorded analysis of a case: its verdict and the whole
// analyze --json document. The store keeps it opaque: the analyze package
// owns its shape.
type Analysis struct {
	CaseID  string
	Verdict string
	Doc     []byte
	At      time.Time
}

// AddAnalysis records a for its case (At defaults to the transaction's
// time). A case may be analysed again; every analysis is kept.
func (tx *Tx) AddAnalysis(a Analysis) error {
	if a.At.IsZero() {
		a.At = tx.now
	}
	if _, err := tx.exec(`INSERT INTO analyses (case_id, verdict, doc, at) VALUES (?, ?, ?, ?)`,
		a.CaseID, a.Verdict, string(a.Doc), nanos(a.At)); err != nil {
		return fmt.Errorf("add analysis of %s: %w", a.CaseID, err)
	}
	return nil
}

// LatestAnalysis returns the last analysis of a case, and whether there is one.
func (tx *Tx) LatestAnalysis(caseID string) (Analysis, bool, error) {
	a := Analysis{CaseID: caseID}
	var (
		doc string
		at  sql.NullInt64
	)
	err := tx.queryRow(`SELECT verdict, doc, at FROM analyses WHERE case_id = ? ORDER BY seq DESC LIMIT 1`, caseID).
		Scan(&a.Verdict, &doc, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Analysis{}, false, nil
	}
	if err != nil {
		return Analysis{}, false, fmt.Errorf("analysis of %s: %w", caseID, err)
	}
	a.Doc, a.At = []byte(doc), fromNanos(at)
	return a, true, nil
}
