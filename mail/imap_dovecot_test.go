package mail

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The watcher against a real Dovecot 2.3 (Debian's dovecot-imapd), started
// here on free 127.0.0.1 ports with its own config in a temp dir. It needs
// root (Dovecot drops to the mail uid) and the package; scripts/test.sh
// installs it.

func TestDovecotWatcher(t *testing.T) {
	d := startIMAPDovecot(t)
	cfg := d.cfg(t, "starttls", "plain")
	d.append(t, cfg, "INBOX", "m1")

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
	d.append(t, cfg, "INBOX", "m2")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE after m2")

	// Restart Dovecot while the watcher idles; mail lands in the Maildir
	// meanwhile, as a local delivery agent would put it there.
	d.stop(t)
	imapWaitFor(t, r.reconnect, "the watcher to notice Dovecot went away")
	d.dropInMaildir(t, "m3")
	d.start(t)
	imapWaitFor(t, r.connected, "the reconnect")
	sink.next(t, 1)
	imapWaitFor(t, r.idling, "IDLE after the reconnect")
	d.append(t, cfg, "INBOX", "m4")
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
	cfg := d.cfg(t, "implicit", "login")
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

type imapDovecot struct {
	bin, dir, conf, maildir string
	imapPort, imapsPort     int
	mailUID, mailGID        int
	mu                      sync.Mutex
	cmd                     *exec.Cmd
	exited                  chan struct{}
	seq                     int
}

func startIMAPDovecot(t *testing.T) *imapDovecot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping the Dovecot test: it must run as root (Dovecot switches to the mail uid)")
	}
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr != nil {
			t.Skip("skipping the Dovecot test: dovecot is not installed (apt-get install dovecot-imapd)")
		}
		bin = "/usr/sbin/dovecot"
	}
	d := &imapDovecot{bin: bin, dir: t.TempDir()}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("look up user nobody: %v", err)
	}
	d.mailUID, _ = strconv.Atoi(nobody.Uid)
	d.mailGID, _ = strconv.Atoi(nobody.Gid)
	// The mail uid (and Dovecot's own users) must traverse every parent.
	for _, p := range []string{filepath.Dir(d.dir), d.dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(d.dir, "mail"), d.mailUID, d.mailGID); err != nil {
		t.Fatal(err)
	}
	d.maildir = filepath.Join(d.dir, "mail", imapTestUser, "Maildir")
	d.imapPort, d.imapsPort = imapFreePort(t), imapFreePort(t)
	d.writeConfig(t)
	d.start(t)
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", log)
		}
	})
	return d
}

func (d *imapDovecot) writeConfig(t *testing.T) {
	t.Helper()
	cert := imapTestCert(t)
	key, err := x509.MarshalPKCS8PrivateKey(cert.cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.cert.Certificate[0]}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"users":    []byte(imapTestUser + ":{PLAIN}" + imapTestPassword + "::::::\n"),
	}
	files["dovecot.conf"] = fmt.Appendf(nil, `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:%[1]s/mail/%%u/Maildir
mailbox_idle_check_interval = 1 secs
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=%[2]d gid=%[3]d home=%[1]s/mail/%%u
}
namespace inbox {
  inbox = yes
  mailbox Processed {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    port = %[4]d
  }
  inet_listener imaps {
    port = %[5]d
    ssl = yes
  }
}
`, d.dir, d.mailUID, d.mailGID, d.imapPort, d.imapsPort)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	if out, err := exec.Command(d.bin, "-n", "-c", d.conf).CombinedOutput(); err != nil {
		t.Fatalf("dovecot -n: %v\n%s", err, out)
	}
}

// start runs Dovecot in the foreground and waits until it greets.
func (d *imapDovecot) start(t *testing.T) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(d.bin, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so stop can end the imap processes too, as
	// systemd does: they outlive a master that is sent SIGTERM alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()

	deadline := time.Now().Add(imapWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.imapPort), time.Second)
		if err == nil {
			line := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Read(line)
			c.Close()
			if bytes.HasPrefix(line[:n], []byte("* OK")) {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("dovecot exited at start:\n%s", out.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot did not greet on port %d within %s", d.imapPort, imapWait)
		}
	}
}

// stop ends every Dovecot process (SIGTERM to the group, as systemd's stop
// does, then SIGKILL to stragglers) and waits for the master to exit.
func (d *imapDovecot) stop(t *testing.T) {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Errorf("dovecot ignored SIGTERM for 10s; killing it")
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-exited
}

func (d *imapDovecot) cfg(t *testing.T, tlsMode, auth string) IMAPConfig {
	port := d.imapPort
	if tlsMode == "implicit" {
		port = d.imapsPort
	}
	cfg := imapTestConfig(t, fmt.Sprintf("127.0.0.1:%d", port), tlsMode)
	cfg.Auth = auth
	return cfg
}

// append delivers a message over IMAP, unflagged, as mail arrives.
func (d *imapDovecot) append(t *testing.T, cfg IMAPConfig, mailbox, id string) {
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

// dropInMaildir puts a message into INBOX's Maildir while Dovecot is down.
func (d *imapDovecot) dropInMaildir(t *testing.T, id string) {
	t.Helper()
	d.seq++
	name := filepath.Join(d.maildir, "new", fmt.Sprintf("%d.M%dP%d.test", time.Now().Unix(), d.seq, os.Getpid()))
	if err := os.WriteFile(name, imapTestMail(id), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(name, d.mailUID, d.mailGID); err != nil {
		t.Fatal(err)
	}
}

// imapFreePort asks the kernel for a free 127.0.0.1 port.
func imapFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
