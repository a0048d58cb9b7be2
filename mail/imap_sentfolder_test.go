package mail

import (
	"context"
	"testing"
)

// TestSentFolder: appends and lookups share one connection, and a dropped
// connection is replaced on the next call.
func TestSentFolder(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	sf := NewSentFolder(ts.cfg(), "Sent")
	defer sf.Close()
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		if err := sf.Append(ctx, imapTestMail(id)); err != nil {
			t.Fatalf("Append(%s): %v", id, err)
		}
	}
	first := sf.c
	for id, want := range map[string]bool{"<r1@test>": true, "r2@test": true, "<r3@test>": false} {
		if got, err := sf.Has(ctx, id); err != nil || got != want {
			t.Errorf("Has(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	if sf.c != first {
		t.Error("the calls did not share one connection")
	}
	first.Close() // the server side goes away
	if err := sf.Append(ctx, imapTestMail("r3")); err != nil {
		t.Fatalf("Append after the connection dropped: %v", err)
	}
	if got, err := sf.Has(ctx, "<r3@test>"); err != nil || !got {
		t.Errorf("Has(r3) after reconnect = %v, %v", got, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sf.Has(cancelled, "<r1@test>"); err == nil {
		t.Error("Has with a cancelled context succeeded")
	}
}
