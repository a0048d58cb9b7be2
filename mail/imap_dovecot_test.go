package mail

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/abuse-responder/abuse-responder/internal/embedded"
)

// The watcher against a real Dovecot 2.3 (Debian's dovecot-imapd), started
// here on free 127.0.0.1 ports with its own config in a temp dir. It needs
// root (Dovecot drops to the mail uid) and the package; scripts/test.sh
// installs it.

func TestDovecotWatcher(t *testing.T) {
	d := startIMAPDovecot(t)
	cfg := dovecotConfig(t, d, "starttls", "plain")
	appendIMAP(t, cfg, "INBOX", "m1")

	cursors := newIMAPMemCursors()
	sink := newIMAPSink()
	r := startIMAPWatcher(t, cfg, cursors, sink) // polls hourly: only IDLE wakes it
	imapWaitFor(t, r.connected, "OnConnect")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE")
	if got := imapList(t, cfg, "INBOX"); len(got) != 0 {
		t.Errorf("INBOX after delivery = %v, want empty", imapIDsOf(got))
	}
	if got := imapIDsOf(imapList(t, cfg, "Processed")); !imapEqualIDs(got, []string{"m1"}) {
		t.Errorf("Processed = %v, want [m1]", got)
	}

	// IDLE wakeup.
	appendIMAP(t, cfg, "INBOX", "m2")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE after m2")

	// Restart Dovecot while the watcher idles; mail lands in the Maildir
	// meanwhile, as a local delivery agent would put it there.
	d.Stop()
	imapWaitFor(t, r.reconnect, "the watcher to notice Dovecot went away")
	if err := d.DropInMaildir(imapTestMail("m3")); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	imapWaitFor(t, r.connected, "the reconnect")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE after the reconnect")
	appendIMAP(t, cfg, "INBOX", "m4")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE after m4")

	if got := sink.ids(); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
		t.Errorf("delivered %v, want m1..m4 once each", got)
	}
	if got := imapIDsOf(imapList(t, cfg, "Processed")); !imapEqualIDs(got, imapIDs("m", 1, 4)) {
		t.Errorf("Processed = %v, want m1..m4", got)
	}
	if got := imapList(t, cfg, "INBOX"); len(got) != 0 {
		t.Errorf("INBOX at the end = %v, want empty", imapIDsOf(got))
	}
	if c := cursors.get("INBOX"); c.validity == 0 || c.last != 4 {
		t.Errorf("cursor = %+v, want Dovecot's UIDVALIDITY and last UID 4", c)
	}
}

func TestDovecotSentFolder(t *testing.T) {
	d := startIMAPDovecot(t)
	cfg := dovecotConfig(t, d, "implicit", "login")
	ctx := imapTestCtx(t, imapWait)
	if err := AppendSent(ctx, cfg, "Sent", imapTestMail("reply-1")); err != nil { // Sent does not exist yet
		t.Fatalf("AppendSent: %v", err)
	}
	for id, want := range map[string]bool{"<reply-1@test>": true, "reply-1@test": true, "<reply-2@test>": false, "eply-1@test": false} {
		if got, err := HasMessageID(ctx, cfg, "Sent", id); err != nil || got != want {
			t.Errorf("HasMessageID(%q) = %v, %v; want %v, nil", id, got, err, want)
		}
	}
	if sent := imapList(t, cfg, "Sent"); len(sent) != 1 || !sent[0].has(imap.FlagSeen) {
		t.Errorf("Sent = %+v, want one message flagged \\Seen", sent)
	}
}

// startIMAPDovecot runs Dovecot for the test user, or skips saying why.
func startIMAPDovecot(t *testing.T) *embedded.Dovecot {
	t.Helper()
	d, err := embedded.StartDovecot(t.TempDir(), imapTestUser, imapTestPassword, "Processed")
	if errors.Is(err, embedded.ErrNoDovecot) {
		t.Skipf("skipping the Dovecot test: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// dovecotConfig is the watcher's config for d, trusting its certificate.
func dovecotConfig(t *testing.T, d *embedded.Dovecot, tlsMode, auth string) IMAPConfig {
	addr := d.Addr
	if tlsMode == "implicit" {
		addr = d.TLSAddr
	}
	cfg := imapTestConfig(t, addr, tlsMode)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(d.CertPEM)
	cfg.TLSConfig = &tls.Config{RootCAs: pool}
	cfg.Auth = auth
	return cfg
}

// appendIMAP delivers a message over IMAP, unflagged, as mail arrives.
func appendIMAP(t *testing.T, cfg IMAPConfig, mailbox, id string) {
	t.Helper()
	raw := imapTestMail(id)
	err := imapShortSession(imapTestCtx(t, imapWait), cfg, func(c *imapclient.Client) error {
		cmd := c.Append(mailbox, int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
	if err != nil {
		t.Fatalf("append %s: %v", id, err)
	}
}
