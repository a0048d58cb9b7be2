package mail

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Connecting (TLS modes, mechanisms) and waiting for mail (IDLE, polling).

func TestWatcherTLSAndAuth(t *testing.T) {
	for _, tc := range []struct{ tls, auth string }{
		{"none", "login"}, {"none", "plain"},
		{"starttls", "login"}, {"starttls", "plain"},
		{"implicit", "login"}, {"implicit", "plain"},
	} {
		t.Run(tc.tls+"/"+tc.auth, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{mode: tc.tls})
			uid := ts.add("INBOX", "m1")
			cfg := ts.cfg()
			cfg.Auth = tc.auth
			sink := newIMAPSink()
			r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), sink)
			imapWaitFor(t, r.connected, "OnConnect")
			in := sink.next(t, 1)[0]
			if in.Mailbox != "INBOX" || in.UIDValidity != 1 || in.UID != uid {
				t.Errorf("deliver got mailbox %q uidvalidity %d uid %d, want INBOX 1 %d", in.Mailbox, in.UIDValidity, in.UID, uid)
			}
			if !bytes.Equal(in.Raw, imapTestMail("m1")) {
				t.Errorf("deliver got Raw %q, want the appended message", in.Raw)
			}
			if in.InternalDate.IsZero() {
				t.Errorf("deliver got a zero InternalDate")
			}
		})
	}
}

// A certificate the configured roots do not vouch for is refused; the
// watcher keeps retrying instead of falling back to plaintext.
func TestWatcherRefusesUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{mode: mode})
			cfg := ts.cfg()
			cfg.TLSConfig = nil // system roots: our self-signed certificate is unknown
			r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), newIMAPSink())
			err := imapWaitFor(t, r.reconnect, "a failed connection")
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Errorf("OnReconnect(%v): want a certificate verification error", err)
			}
			select {
			case <-r.connected:
				t.Errorf("OnConnect called despite an untrusted certificate")
			default:
			}
		})
	}
}

func TestWatcherIdleDeliversNewMail(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	sink := newIMAPSink()
	r := startIMAPWatcher(t, ts.cfg(), newIMAPMemCursors(), sink) // polls hourly: only IDLE can wake it
	imapWaitFor(t, r.idling, "IDLE")
	ts.add("INBOX", "m1")
	if got := imapTestID(sink.next(t, 1)[0].Raw); got != "m1" {
		t.Fatalf("delivered %q, want m1", got)
	}
	imapWaitFor(t, r.idling, "IDLE again")
	ts.add("INBOX", "m2")
	if got := imapTestID(sink.next(t, 1)[0].Raw); got != "m2" {
		t.Fatalf("delivered %q, want m2", got)
	}
}

func TestWatcherPolls(t *testing.T) {
	for _, tc := range []struct {
		name  string
		strip string
		idle  bool
	}{
		{"idle-off", "", false},
		{"server-without-idle", " IDLE", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newIMAPTestServer(t, imapTestServerOpts{caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}}, strip: tc.strip})
			cfg := ts.cfg()
			cfg.IDLE = tc.idle
			cfg.PollInterval = 50 * time.Millisecond
			sink := newIMAPSink()
			r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), sink)
			imapWaitFor(t, r.connected, "OnConnect")
			ts.add("INBOX", "m1")
			ts.add("INBOX", "m2")
			if got := []string{imapTestID(sink.next(t, 1)[0].Raw), imapTestID(sink.next(t, 1)[0].Raw)}; !imapEqualIDs(got, []string{"m1", "m2"}) {
				t.Errorf("delivered %v, want [m1 m2]", got)
			}
			if n := len(r.idling); n != 0 {
				t.Errorf("entered IDLE %d times, want polling only", n)
			}
			if !strings.Contains(r.logs.String(), "idle=false") {
				t.Errorf("connect log does not say idle=false:\n%s", r.logs)
			}
		})
	}
}

// Wake makes a polling watcher look now.
func TestWatcherWake(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	cfg := ts.cfg()
	cfg.IDLE = false // and PollInterval is an hour
	sink := newIMAPSink()
	r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), sink)
	imapWaitFor(t, r.connected, "OnConnect")
	ts.add("INBOX", "m1")
	r.w.Wake()
	r.w.Wake() // a second wake while one is pending must not block
	if got := imapTestID(sink.next(t, 1)[0].Raw); got != "m1" {
		t.Fatalf("delivered %q, want m1", got)
	}
}

func TestWatcherReissuesIdle(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	cfg := ts.cfg()
	cfg.IdleRefresh = 30 * time.Millisecond
	sink := newIMAPSink()
	r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), sink)
	imapWaitFor(t, r.connected, "OnConnect")
	for i := range 4 {
		imapWaitFor(t, r.idling, fmt.Sprintf("IDLE #%d", i+1))
	}
	ts.add("INBOX", "m1")
	sink.next(t, 1)
	if n := len(r.connected); n != 0 {
		t.Errorf("reconnected %d times while re-issuing IDLE, want 0", n)
	}
}

// A refused login is retried with backoff and logged with the server's
// answer, never with the password.
func TestWatcherNeverLogsPassword(t *testing.T) {
	ts := newIMAPTestServer(t, imapTestServerOpts{})
	cfg := ts.cfg()
	cfg.Password = "wrong-" + imapTestPassword
	r := startIMAPWatcher(t, cfg, newIMAPMemCursors(), newIMAPSink())
	var errs []error
	for range 3 {
		errs = append(errs, imapWaitFor(t, r.reconnect, "a refused login"))
	}
	for _, err := range errs {
		if !strings.Contains(err.Error(), imapTestUser) || strings.Contains(err.Error(), imapTestPassword) {
			t.Errorf("OnReconnect(%v): want the user name and no password", err)
		}
	}
	logs := r.logs.String()
	if strings.Contains(logs, imapTestPassword) {
		t.Errorf("the log contains the password:\n%s", logs)
	}
	if !strings.Contains(logs, "reconnecting") {
		t.Errorf("the log does not mention reconnecting:\n%s", logs)
	}
}

func TestWatcherRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []IMAPConfig{
		{Address: "127.0.0.1:1", TLS: "ssl"},
		{Address: "127.0.0.1:1", TLS: "none", Auth: "cram-md5"},
		{Address: "no-port", TLS: "none"},
	} {
		err := NewWatcher(cfg, newIMAPMemCursors(), newIMAPSink().deliver, nil).Run(imapTestCtx(t, imapWait))
		if err == nil {
			t.Errorf("Run(%+v) = nil, want a config error", cfg)
		}
	}
}
