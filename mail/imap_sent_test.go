package mail

import (
	"context"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestAppendSentAndHasMessageID(t *testing.T) {
	for _, mode := range []string{"none", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{mode: mode})
			cfg := ts.cfg()
			ctx := imapTestCtx(t, imapWait)

			if ok, err := HasMessageID(ctx, cfg, "Sent", "<reply-1@test>"); ok || err != nil {
				t.Errorf("HasMessageID in a missing mailbox = %v, %v; want false, nil", ok, err)
			}
			// "Sent" does not exist yet: AppendSent creates it.
			if err := AppendSent(ctx, cfg, "Sent", imapTestMail("reply-1")); err != nil {
				t.Fatalf("AppendSent: %v", err)
			}
			if err := AppendSent(ctx, cfg, "Sent", imapTestMail("xreply-12")); err != nil {
				t.Fatalf("AppendSent: %v", err)
			}
			sent := imapList(t, cfg, "Sent")
			if got := imapIDsOf(sent); !imapEqualIDs(got, []string{"reply-1", "xreply-12"}) {
				t.Fatalf("Sent = %v, want [reply-1 xreply-12]", got)
			}
			if !sent[0].has(imap.FlagSeen) {
				t.Errorf("appended reply has flags %v, want \\Seen", sent[0].Flags)
			}
			for _, tc := range []struct {
				id   string
				want bool
			}{
				{"<reply-1@test>", true},
				{"reply-1@test", true},
				{" <reply-1@test> ", true},
				{"<reply-2@test>", false},
				{"reply-1@tes", false}, // a prefix of a real one
				{"eply-1@test", false}, // a suffix
				{"<reply-12@test>", false},
			} {
				got, err := HasMessageID(ctx, cfg, "Sent", tc.id)
				if err != nil || got != tc.want {
					t.Errorf("HasMessageID(%q) = %v, %v; want %v, nil", tc.id, got, err, tc.want)
				}
			}
			if _, err := HasMessageID(ctx, cfg, "Sent", "<>"); err == nil {
				t.Errorf("HasMessageID(<>) = nil error, want one")
			}
		})
	}
}

func TestAppendSentRespectsContext(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := AppendSent(ctx, ts.cfg(), "Sent", imapTestMail("r")); err == nil {
		t.Errorf("AppendSent with a cancelled context = nil, want an error")
	}
	if _, err := HasMessageID(ctx, ts.cfg(), "Sent", "<r@test>"); err == nil {
		t.Errorf("HasMessageID with a cancelled context = nil error, want one")
	}
}
