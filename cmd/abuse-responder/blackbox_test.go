package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/embedded"
)

// TestBlackBox builds the binary and runs it as systemd would, against a
// real Dovecot and an SMTP listener: a notice, kill -9, a forged and a
// genuine approval, kill -9 again; exactly one summary and one reply.
func TestBlackBox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	dc, err := embedded.StartDovecot(t.TempDir(), "abuse@example.org", "secret", "Processed", "Sent")
	if errors.Is(err, embedded.ErrNoDovecot) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Stop)
	sink, err := embedded.StartSMTP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })

	bin := filepath.Join(dir, "abuse-responder")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "imap-password"), []byte("secret\n"), 0o600)
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, fmt.Appendf(nil, `[imap]
address = %q
tls = "none"
username = "abuse@example.org"
password_file = %q
processed_mailbox = "Processed"
sent_mailbox = "Sent"
[smtp]
address = %q
tls = "none"
from = "Abuse desk <abuse@example.org>"
[notices]
accounts = ["111122223333"]
[approval]
approvers = ["alice@example.org"]
summary_to = ["ops@example.org"]
authserv_id = "mx.example.org"
[remediate]
mode = "report-only"
[store]
path = %q
[metrics]
listen = ""
`, dc.Addr, filepath.Join(dir, "imap-password"), sink.Addr, filepath.Join(dir, "state", "state.db")), 0o600)

	var got []embedded.Mail
	next := func(what string) embedded.Mail {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		m, err := sink.Wait(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		got = append(got, m)
		return m
	}
	var logs []*syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range logs {
				t.Logf("log of run %d:\n%s", i+1, l)
			}
		}
	})
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "run", "--config", cfg)
		buf := &syncBuffer{}
		logs = append(logs, buf)
		cmd.Stderr = buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	kill9 := func(cmd *exec.Cmd) {
		cmd.Process.Signal(os.Kill)
		cmd.Wait()
	}

	notice, err := os.ReadFile("demodata/notice.eml")
	if err != nil {
		t.Fatal(err)
	}
	notice = append([]byte("Authentication-Results: mx.example.org; dmarc=pass header.from=support.aws.com\n"),
		redate(notice)...)
	p1 := start()
	if err := dc.Deliver(notice); err != nil {
		t.Fatal(err)
	}
	summary := next("the summary")
	// kill -9 once the daemon has recorded the send (the window between
	// the SMTP server's acceptance and that record is README's one
	// documented at-least-once case).
	waitLog(t, logs[0], "kind=summary")
	kill9(p1)

	p2 := start()
	id := headerOf(summary.Raw, "Message-Id")
	reply := func(from, auth string) []byte {
		return []byte("Authentication-Results: mx.example.org; " + auth + "\r\nFrom: <" + from + ">\r\nTo: abuse@example.org\r\n" +
			"Subject: Re: case\r\nMessage-ID: <" + strings.Split(from, "@")[0] + "-1@example.org>\r\nIn-Reply-To: " + id +
			"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n\r\nconfirm\r\nThe scanner is gone.\r\n")
	}
	dc.Deliver(reply("mallory@example.org", "dmarc=pass header.from=example.org")) // not an approver
	dc.Deliver(reply("alice@example.org", "dmarc=fail header.from=example.org"))   // forged Alice
	dc.Deliver(reply("alice@example.org", "dkim=pass header.d=example.org; dmarc=pass header.from=example.org"))
	aws := next("the reply to AWS")
	if aws.To[0] != "trustandsafety@support.aws.com" {
		t.Fatalf("second mail went to %v, want the reply to AWS", aws.To)
	}
	waitLog(t, logs[1], "kind=reply")
	kill9(p2)

	p3 := start()
	waitLog(t, logs[2], "ready")
	// Give a wrong resend every chance: the restarted daemon's loops run
	// at once, and it holds no lock on anything we wait for.
	select {
	case m := <-sink.Got:
		t.Errorf("after the last restart a mail went to %v", m.To)
	case <-time.After(3 * time.Second):
	}
	kill9(p3)
	out, err := exec.Command(bin, "cases", "--config", cfg, "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "closed") {
		t.Errorf("cases list: %v\n%s", err, out)
	}
	if n, _ := dc.Count("Sent"); n != 2 {
		t.Errorf("Sent holds %d mails, want the summary and the reply", n)
	}
}

// syncBuffer is a bytes.Buffer that a child process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitLog waits until the daemon's log holds want.
func waitLog(t *testing.T, log *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
