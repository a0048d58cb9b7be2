package embedded

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// ErrNoDovecot means Dovecot cannot run here: not installed, or not root
// (it switches to the mail user). Tests skip on it with the reason.
var ErrNoDovecot = errors.New("dovecot unavailable")

// Dovecot is a real Dovecot 2.3 (Debian's dovecot-imapd) with its own
// config in a temporary directory, on a free 127.0.0.1 port, plaintext
// IMAP (loopback only). Stop ends the whole process group.
type Dovecot struct {
	Addr    string // plaintext IMAP (STARTTLS offered)
	TLSAddr string // implicit TLS
	CertPEM []byte // the server's self-signed certificate, for clients to trust

	dir, conf  string
	uid, gid   int
	bin        string
	user, pass string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartDovecot runs Dovecot for one user with the given mailboxes besides
// INBOX, in dir (which must be fresh).
func StartDovecot(dir, user, pass string, mailboxes ...string) (*Dovecot, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it must run as root (Dovecot switches to the mail uid)", ErrNoDovecot)
	}
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%w: not installed (apt-get install dovecot-imapd)", ErrNoDovecot)
		}
	}
	d := &Dovecot{dir: dir, bin: bin, user: user, pass: pass}
	if err := d.writeConfig(mailboxes); err != nil {
		return nil, err
	}
	if err := d.Start(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Dovecot) writeConfig(mailboxes []string) error {
	nobody, err := lookupNobody()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	// The mail uid must traverse every parent of the Maildir.
	for _, p := range []string{filepath.Dir(d.dir), d.dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chown(filepath.Join(d.dir, "mail"), nobody[0], nobody[1]); err != nil {
		return err
	}
	d.uid, d.gid = nobody[0], nobody[1]
	port, err := freePort()
	if err != nil {
		return err
	}
	tlsPort, err := freePort()
	if err != nil {
		return err
	}
	d.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	d.TLSAddr = fmt.Sprintf("127.0.0.1:%d", tlsPort)
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return err
	}
	d.CertPEM = certPEM
	var boxes bytes.Buffer
	for _, mb := range mailboxes {
		fmt.Fprintf(&boxes, "  mailbox %s {\n    auto = create\n  }\n", mb)
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
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
%[5]s}
service imap-login {
  inet_listener imap {
    port = %[4]d
  }
  inet_listener imaps {
    port = %[6]d
    ssl = yes
  }
}
`, d.dir, nobody[0], nobody[1], port, boxes.String(), tlsPort)
	files := map[string][]byte{
		"cert.pem": certPEM, "key.pem": keyPEM, "dovecot.conf": []byte(conf),
		"users": []byte(d.user + ":{PLAIN}" + d.pass + "::::::\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d.dir, name), data, 0o644); err != nil {
			return err
		}
	}
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	if out, err := exec.Command(d.bin, "-n", "-c", d.conf).CombinedOutput(); err != nil {
		return fmt.Errorf("dovecot -n: %v\n%s", err, out)
	}
	return nil
}

// Start runs Dovecot (again) and waits until it greets.
func (d *Dovecot) Start() error {
	var out bytes.Buffer
	cmd := exec.Command(d.bin, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so Stop ends the imap processes too, as
	// systemd does: they outlive a master sent SIGTERM alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", d.Addr, time.Second); err == nil {
			line := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _ := c.Read(line)
			c.Close()
			if bytes.HasPrefix(line[:n], []byte("* OK")) {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("dovecot exited at start:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.Stop()
	return fmt.Errorf("dovecot did not greet on %s within 15s", d.Addr)
}

// Stop ends every Dovecot process: SIGTERM to the group, SIGKILL after 10s.
func (d *Dovecot) Stop() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// Address is where the server listens.
func (d *Dovecot) Address() string { return d.Addr }

// PID is the master's pid, which is also the process group of every
// Dovecot process (for CPU accounting); 0 when stopped.
func (d *Dovecot) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// LogTail returns the end of Dovecot's log, for error messages.
func (d *Dovecot) LogTail() string {
	b, err := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\ndovecot.log (tail):\n" + string(b)
}

// DropInMaildir puts raw into INBOX's Maildir directly, as a local
// delivery agent would, for example while Dovecot is stopped.
func (d *Dovecot) DropInMaildir(raw []byte) error {
	dir := filepath.Join(d.dir, "mail", d.user, "Maildir", "new")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, p := range []string{filepath.Join(d.dir, "mail", d.user), filepath.Join(d.dir, "mail", d.user, "Maildir"), dir} {
		if err := os.Chown(p, d.uid, d.gid); err != nil {
			return err
		}
	}
	name := filepath.Join(dir, fmt.Sprintf("%d.M%dP%d.embedded", time.Now().Unix(), time.Now().UnixNano(), os.Getpid()))
	if err := os.WriteFile(name, raw, 0o600); err != nil {
		return err
	}
	return os.Chown(name, d.uid, d.gid)
}

func (d *Dovecot) client() (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(d.Addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(d.user, d.pass).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Deliver appends raw to INBOX.
func (d *Dovecot) Deliver(raw []byte) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return appendTo(c, "INBOX", raw)
}

// Count returns how many messages mailbox holds.
func (d *Dovecot) Count(mailbox string) (int, error) {
	c, err := d.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return count(c, mailbox)
}

func appendTo(c *imapclient.Client, mailbox string, raw []byte) error {
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

func count(c *imapclient.Client, mailbox string) (int, error) {
	st, err := c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, err
	}
	return int(*st.NumMessages), nil
}

func lookupNobody() ([2]int, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return [2]int{}, fmt.Errorf("look up user nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return [2]int{uid, gid}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// selfSigned makes a certificate for 127.0.0.1: Dovecot wants one even
// when the tests speak plaintext.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
}
