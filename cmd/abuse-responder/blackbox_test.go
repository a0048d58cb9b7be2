package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/internal/embedded"
)

// blackBox runs the built binary as systemd would, against a real
// Dovecot and an SMTP listener, and restarts it with kill -9.
type blackBox struct {
	t    *testing.T
	dir  string
	bin  string
	cfg  string
	dc   *embedded.Dovecot
	sink *embedded.SMTP
	env  []string // extra environment of the daemon
	logs []*syncBuffer
}

// newBlackBox builds the binary and starts the servers; extra is appended
// to the config (a [remediate] section, an [aws] section).
func newBlackBox(t *testing.T, extra string) *blackBox {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	b := &blackBox{t: t, dir: t.TempDir()}
	dc, err := embedded.StartDovecot(t.TempDir(), "abuse@example.org", "secret", "Processed", "Sent")
	if errors.Is(err, embedded.ErrNoDovecot) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Stop)
	b.dc = dc
	if b.sink, err = embedded.StartSMTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.sink.Close() })

	b.bin = filepath.Join(b.dir, "abuse-responder")
	if out, err := exec.Command("go", "build", "-o", b.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(b.dir, "imap-password"), []byte("secret\n"), 0o600)
	b.cfg = filepath.Join(b.dir, "config.toml")
	os.WriteFile(b.cfg, fmt.Appendf(nil, `[imap]
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
[store]
path = %q
[metrics]
listen = ""
%s`, dc.Addr, filepath.Join(b.dir, "imap-password"), b.sink.Addr, filepath.Join(b.dir, "state", "state.db"), extra), 0o600)
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range b.logs {
				t.Logf("log of run %d:\n%s", i+1, l)
			}
		}
	})
	return b
}

// next waits for the next mail at the SMTP listener.
func (b *blackBox) next(what string) embedded.Mail {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := b.sink.Wait(ctx)
	if err != nil {
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
	return m
}

// start runs the daemon; its log is b.logs[len-1].
func (b *blackBox) start() *exec.Cmd {
	b.t.Helper()
	cmd := exec.Command(b.bin, "run", "--config", b.cfg)
	cmd.Env = append(os.Environ(), b.env...)
	buf := &syncBuffer{}
	b.logs = append(b.logs, buf)
	cmd.Stderr = buf
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// run runs a command of the binary to its end.
func (b *blackBox) run(args ...string) (string, error) {
	cmd := exec.Command(b.bin, append(args[:1:1], append([]string{"--config", b.cfg}, args[1:]...)...)...)
	cmd.Env = append(os.Environ(), b.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func kill9(cmd *exec.Cmd) {
	cmd.Process.Signal(os.Kill)
	cmd.Wait()
}

// deliverNotice puts the demo's notice, dated now and passing DMARC, in
// the mailbox.
func (b *blackBox) deliverNotice() {
	b.t.Helper()
	notice, err := os.ReadFile("demodata/notice.eml")
	if err != nil {
		b.t.Fatal(err)
	}
	notice = append([]byte("Authentication-Results: mx.example.org; dmarc=pass header.from=support.aws.com\n"), redate(notice)...)
	if err := b.dc.Deliver(notice); err != nil {
		b.t.Fatal(err)
	}
}

// approvalFrom is a reply to the summary with Message-ID id.
func approvalFrom(from, auth, id string) []byte {
	return []byte("Authentication-Results: mx.example.org; " + auth + "\r\nFrom: <" + from + ">\r\nTo: abuse@example.org\r\n" +
		"Subject: Re: case\r\nMessage-ID: <" + strings.Split(from, "@")[0] + "-1@example.org>\r\nIn-Reply-To: " + id +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n\r\nconfirm\r\nThe scanner is gone.\r\n")
}

// quiet asserts that no mail arrives for a while after the last restart.
func (b *blackBox) quiet() {
	b.t.Helper()
	// Give a wrong resend every chance: the restarted daemon's loops run
	// at once, and it holds no lock on anything we wait for.
	select {
	case m := <-b.sink.Got:
		b.t.Errorf("after the last restart a mail went to %v", m.To)
	case <-time.After(3 * time.Second):
	}
}

// TestBlackBox builds the binary and runs it as systemd would, against a
// real Dovecot and an SMTP listener: a notice, kill -9, a forged and a
// genuine approval, kill -9 again; exactly one summary and one reply.
func TestBlackBox(t *testing.T) {
	b := newBlackBox(t, "[remediate]\nmode = \"report-only\"\n")
	p1 := b.start()
	b.deliverNotice()
	summary := b.next("the summary")
	// kill -9 once the daemon has recorded the send (the window between
	// the SMTP server's acceptance and that record is README's one
	// documented at-least-once case).
	waitLog(t, b.logs[0], "kind=summary")
	kill9(p1)

	p2 := b.start()
	id := headerOf(summary.Raw, "Message-Id")
	b.dc.Deliver(approvalFrom("mallory@example.org", "dmarc=pass header.from=example.org", id)) // not an approver
	b.dc.Deliver(approvalFrom("alice@example.org", "dmarc=fail header.from=example.org", id))   // forged Alice
	b.dc.Deliver(approvalFrom("alice@example.org", "dkim=pass header.d=example.org; dmarc=pass header.from=example.org", id))
	aws := b.next("the reply to AWS")
	if aws.To[0] != "trustandsafety@support.aws.com" {
		t.Fatalf("second mail went to %v, want the reply to AWS", aws.To)
	}
	waitLog(t, b.logs[1], "kind=reply")
	kill9(p2)

	p3 := b.start()
	waitLog(t, b.logs[2], "ready")
	b.quiet()
	kill9(p3)
	out, err := b.run("cases", "list")
	if err != nil || !strings.Contains(out, "closed") {
		t.Errorf("cases list: %v\n%s", err, out)
	}
	if n, _ := b.dc.Count("Sent"); n != 2 {
		t.Errorf("Sent holds %d mails, want the summary and the reply", n)
	}
}

// TestBlackBoxBlocking runs the built binary in block-then-confirm mode
// against our EC2 emulator over HTTP: the network ACL gets its deny
// entries before the summary, kill -9 and restarts add none and send
// nothing twice, the reply lists the blocks, and `unblock` in another
// process restores the ACL exactly.
func TestBlackBoxBlocking(t *testing.T) {
	emu := awstest.SeedWorld(t, awstest.SeedOptions{PublicIP: "198.51.100.23"})
	original, _ := emu.NetworkACL("acl-a")
	b := newBlackBox(t, fmt.Sprintf(`[aws]
endpoint_url = %q
regions = ["eu-central-1"]
[[aws.accounts]]
id = "111122223333"
[analyze]
host_evidence = "off"
[remediate]
mode = "block-then-confirm"
actions = ["nacl"]
`, emu.URL()))
	b.env = []string{"AWS_ACCESS_KEY_ID=AKIDBLACKBOX", "AWS_SECRET_ACCESS_KEY=secret", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE="}
	denies := func() int {
		acl, _ := emu.NetworkACL("acl-a")
		n := 0
		for _, e := range acl.Entries {
			if e.Egress && e.Action == "deny" {
				n++
			}
		}
		return n
	}

	p1 := b.start()
	b.deliverNotice()
	summary := b.next("the summary")
	if n := denies(); n != 4 {
		t.Fatalf("%d deny entries when the summary arrived, want 4", n)
	}
	if !strings.Contains(unfoldQP(summary.Raw), "blocked egress tcp to 203.0.113.10/32 port 23") {
		t.Errorf("the summary does not list the block:\n%s", summary.Raw)
	}
	waitLog(t, b.logs[0], "kind=summary")
	kill9(p1)
	creates := count(emu.Calls(), "CreateNetworkAclEntry")

	p2 := b.start()
	b.dc.Deliver(approvalFrom("alice@example.org", "dkim=pass header.d=example.org; dmarc=pass header.from=example.org",
		headerOf(summary.Raw, "Message-Id")))
	aws := b.next("the reply to AWS")
	if aws.To[0] != "trustandsafety@support.aws.com" || !strings.Contains(unfoldQP(aws.Raw), "UTC: blocked egress tcp to 203.0.113.12/32 port 5900") {
		t.Fatalf("second mail to %v does not list the blocks:\n%s", aws.To, aws.Raw)
	}
	waitLog(t, b.logs[1], "kind=reply")
	kill9(p2)

	p3 := b.start()
	waitLog(t, b.logs[2], "ready")
	b.quiet()
	kill9(p3)
	if n := count(emu.Calls(), "CreateNetworkAclEntry"); n != creates || denies() != 4 {
		t.Errorf("restarts made %d more CreateNetworkAclEntry calls and left %d denies, want none and 4", n-creates, denies())
	}

	out, err := b.run("blocks")
	if err != nil || strings.Count(out, "verified ") != 4 {
		t.Errorf("blocks: %v\n%s", err, out)
	}
	if out, err := b.run("unblock", "13051177201-1"); err != nil || strings.Count(out, "removed") != 4 {
		t.Errorf("unblock: %v\n%s", err, out)
	}
	if acl, _ := emu.NetworkACL("acl-a"); !reflect.DeepEqual(acl.Entries, original.Entries) {
		t.Errorf("ACL after unblock = %+v, want the original %+v", acl.Entries, original.Entries)
	}
}

// unfoldQP joins quoted-printable soft line breaks, so that a phrase is
// found wherever the mail wrapped it.
func unfoldQP(raw []byte) string {
	s := strings.ReplaceAll(string(raw), "=\r\n", "")
	return strings.ReplaceAll(s, "=\n", "")
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
