package mail

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestWatcherTruncatesHugeMail: a mail over MaxMessageBytes is delivered
// as its first MaxMessageBytes, marked Truncated, and the mail after it
// still arrives whole: memory stays bounded and nothing is lost.
func TestWatcherTruncatesHugeMail(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	huge := append(imapTestMail("huge"), bytes.Repeat([]byte("x"), MaxMessageBytes+4096)...)
	if _, err := ts.user.Append("INBOX", bytes.NewReader(huge), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	ts.add("INBOX", "after")
	sink := newIMAPSink()
	startIMAPWatcher(t, ts.cfg(), newIMAPMemCursors(), sink)
	got := sink.next(t, 2)
	if !got[0].Truncated || len(got[0].Raw) != MaxMessageBytes || imapTestID(got[0].Raw) != "huge" {
		t.Errorf("huge mail: Truncated %v, %d bytes, id %q; want truncated to %d bytes with its header",
			got[0].Truncated, len(got[0].Raw), imapTestID(got[0].Raw), MaxMessageBytes)
	}
	if got[1].Truncated || imapTestID(got[1].Raw) != "after" {
		t.Errorf("the mail after it: Truncated %v, id %q", got[1].Truncated, imapTestID(got[1].Raw))
	}
}
