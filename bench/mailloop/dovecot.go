package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dovecot is a Dovecot 2.3 of our own: its config, state and Maildir in a
// temp dir, plaintext IMAP on a free 127.0.0.1 port, in its own process
// group so that stop ends every process it forked.
type dovecot struct {
	bin, dir, conf, maildir string
	port                    int
	mailUID, mailGID        int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    bytes.Buffer
}

const (
	benchUser     = "abuse@bench.example"
	benchPassword = "bench-secret"
)

// startDovecot writes the config under dir and starts Dovecot there.
func startDovecot(dir string) (*dovecot, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root: Dovecot switches to the mail uid")
	}
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
		if _, serr := os.Stat(bin); serr != nil {
			return nil, errors.New("dovecot is not installed (apt-get install dovecot-imapd)")
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("look up user nobody: %w", err)
	}
	d := &dovecot{bin: bin, dir: dir}
	d.mailUID, _ = strconv.Atoi(nobody.Uid)
	d.mailGID, _ = strconv.Atoi(nobody.Gid)
	// The mail uid and Dovecot's own users must traverse dir (MkdirTemp
	// makes it 0700).
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(filepath.Join(dir, "mail"), d.mailUID, d.mailGID); err != nil {
		return nil, err
	}
	d.maildir = filepath.Join(dir, "mail", benchUser, "Maildir")
	if d.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := d.writeConfig(); err != nil {
		return nil, err
	}
	if err := d.start(); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *dovecot) addr() string { return fmt.Sprintf("127.0.0.1:%d", d.port) }

func (d *dovecot) writeConfig() error {
	// Debian 12's Dovecot 2.3 syntax (GO-STACK.md §6), without TLS: the
	// bench talks to it on loopback only. The imaps listener is switched
	// off (port 0) since there is no certificate.
	conf := fmt.Appendf(nil, `base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
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
  mailbox Sent {
    auto = create
    special_use = \Sent
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[4]d
  }
  inet_listener imaps {
    port = 0
  }
}
`, d.dir, d.mailUID, d.mailGID, d.port)
	users := []byte(benchUser + ":{PLAIN}" + benchPassword + "::::::\n")
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	if err := os.WriteFile(d.conf, conf, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.dir, "users"), users, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(d.bin, "-n", "-c", d.conf).CombinedOutput(); err != nil {
		return fmt.Errorf("dovecot -n: %v\n%s", err, out)
	}
	return nil
}

// start runs Dovecot in the foreground and waits (at most 15s) until it
// greets on the IMAP port.
func (d *dovecot) start() error {
	cmd := exec.Command(d.bin, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = &d.out, &d.out
	// Its own process group, so that stop reaches the imap and auth
	// processes too; and a master that outlives a killed bench gets SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.addr(), time.Second)
		if err == nil {
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
			return fmt.Errorf("dovecot exited at start:\n%s%s", d.out.String(), d.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot did not greet on %s within 15s%s", d.addr(), d.logTail())
		}
	}
}

// stop ends every Dovecot process: SIGTERM to the group, SIGKILL to what
// is left after 10s.
func (d *dovecot) stop() {
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
		fmt.Fprintln(os.Stderr, "dovecot ignored SIGTERM for 10s; killing it")
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		fmt.Fprintln(os.Stderr, "dovecot master did not exit after SIGKILL")
	}
}

func (d *dovecot) pgid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *dovecot) logTail() string {
	b, err := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "\ndovecot.log (tail):\n" + string(b)
}

// dropInMaildir writes msgs straight into INBOX's Maildir new/, owned by
// the mail uid, as a local delivery agent would leave them. Dovecot picks
// them up at its next sync of INBOX (a SELECT or STATUS).
func (d *dovecot) dropInMaildir(msgs func(i int) []byte, n int) error {
	newDir := filepath.Join(d.maildir, "new")
	if _, err := os.Stat(newDir); err != nil {
		return fmt.Errorf("INBOX maildir: %w", err)
	}
	now := time.Now().Unix()
	pid := os.Getpid()
	for i := range n {
		name := filepath.Join(newDir, fmt.Sprintf("%d.M%06dP%d.bench", now, i, pid))
		if err := os.WriteFile(name, msgs(i), 0o600); err != nil {
			return err
		}
		if err := os.Chown(name, d.mailUID, d.mailGID); err != nil {
			return err
		}
	}
	return nil
}

// cpuTicks sums user and system time (with reaped children) over every
// process in Dovecot's process group, in clock ticks. Processes that
// exited were reaped by the master, so their time is in its cutime/cstime.
func (d *dovecot) cpuTicks() int64 {
	pgid := d.pgid()
	if pgid == 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0]=state f[1]=ppid f[2]=pgrp ... f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
		if len(f) < 15 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		for _, k := range f[11:15] {
			v, _ := strconv.ParseInt(k, 10, 64)
			total += v
		}
	}
	return total
}

// freePort asks the kernel for a free 127.0.0.1 port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
