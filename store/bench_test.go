package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/abuse-responder/abuse-responder/abuse"
)

// BenchmarkNoticeIntake measures what one incoming notice costs the store:
// AddMessage (its own transaction), then one Update with CreateCase,
// AddNotice, SetMessageStatus and Enqueue of the summary. Each op is two
// synchronous=FULL commits, so the figure is bound by fsync on the disk
// under t.TempDir(); cases/s is the figure the README quotes.
func BenchmarkNoticeIntake(b *testing.B) {
	ctx := context.Background()
	s := openTest(b)
	n := fullNotice()
	raw := make([]byte, 16<<10) // a typical notice with headers
	for i := range raw {
		raw[i] = byte('a' + i%26)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("%d-1", i)
		copy(raw, id)
		msg, _, err := s.AddMessage(ctx, Message{Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
			MessageID: "<" + id + "@amazon.com>", Raw: raw})
		if err != nil {
			b.Fatalf("AddMessage = %v", err)
		}
		n.CaseID = id
		err = s.Update(ctx, func(tx *Tx) error {
			if err := tx.CreateCase(Case{ID: id, State: abuse.StateReceived, Notice: n}, "notice"); err != nil {
				return err
			}
			if err := tx.AddNotice(id, msg, n); err != nil {
				return err
			}
			if _, err := tx.Enqueue(testMail(id+":summary", id)); err != nil {
				return err
			}
			return tx.SetMessageStatus(msg, StatusHandled, id, "opened the case")
		})
		if err != nil {
			b.Fatalf("Update = %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cases/s")
}
