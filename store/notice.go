package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// CaseNotice is one notice that joined a case: the first notice, then each
// reminder, final notice or additional report, so the case shows what AWS
// said and when.
type CaseNotice struct {
	CaseID string
	// MessageID is the id of the stored mail (Store.Message), 0 when the
	// notice did not come from a stored mail.
	MessageID int64
	Stage     abuse.Stage
	Notice    abuse.Notice
	At        time.Time
}

// AddNotice records that notice n, parsed from stored mail messageID (0 for
// none), joined case caseID. Recording the same mail for the same case
// again is a no-op, so handling a mail a second time after a crash adds
// nothing. The case must exist.
func (tx *Tx) AddNotice(caseID string, messageID int64, n abuse.Notice) error {
	what := fmt.Sprintf("add notice from message %d to case %s", messageID, caseID)
	js, err := encodeNotice(n)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var msg any
	if messageID != 0 {
		msg = messageID
	}
	_, err = tx.exec(`INSERT INTO notices (case_id, message_id, stage, notice, at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		caseID, msg, string(n.Stage), js, nanos(tx.now))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Notices returns the notices of case caseID in the order they joined it.
func (tx *Tx) Notices(caseID string) ([]CaseNotice, error) {
	what := "notices of case " + caseID
	rows, err := tx.query(`SELECT message_id, stage, notice, at FROM notices
		WHERE case_id = ? ORDER BY seq`, caseID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []CaseNotice
	for rows.Next() {
		var (
			msg       sql.NullInt64
			stage, js string
			at        sql.NullInt64
			cn        = CaseNotice{CaseID: caseID}
		)
		if err := rows.Scan(&msg, &stage, &js, &at); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if cn.Notice, err = decodeNotice(js); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cn.MessageID, cn.Stage, cn.At = msg.Int64, abuse.Stage(stage), fromNanos(at)
		out = append(out, cn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// noticeRecord is how an abuse.Notice is kept on disk. abuse.Notice's own
// JSON is the parse --json contract and leaves out ReplyTo, References and
// Evidence ("-" tags); the store must keep them (the reply is threaded on
// References, the evidence is shown to the admins), so they get their own
// keys beside the embedded contract fields. Times keep the offset the mail
// gave them (RFC 3339 with offset): it is part of the evidence.
type noticeRecord struct {
	abuse.Notice
	ReplyTo    string   `json:"reply_to"`
	References []string `json:"references"`
	Evidence   string   `json:"evidence"`
}

func encodeNotice(n abuse.Notice) (string, error) {
	b, err := json.Marshal(noticeRecord{
		Notice:     n,
		ReplyTo:    n.ReplyTo,
		References: n.References,
		Evidence:   n.Evidence,
	})
	if err != nil {
		return "", fmt.Errorf("encode notice %s: %w", n.CaseID, err)
	}
	return string(b), nil
}

func decodeNotice(s string) (abuse.Notice, error) {
	var r noticeRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return abuse.Notice{}, fmt.Errorf("decode notice: %w", err)
	}
	n := r.Notice
	n.ReplyTo = r.ReplyTo
	n.References = r.References
	n.Evidence = r.Evidence
	return n, nil
}
