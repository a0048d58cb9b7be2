// Package embedded runs real IMAP and SMTP servers inside the process, on
// loopback ports: go-imap's in-memory server and a go-smtp listener that
// hands each message it accepts to a channel. The demo runs the whole mail
// loop on them, and the daemon's tests use them as the servers at the
// other end of the wire.
package embedded

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// IMAP is an in-memory IMAP server with one user.
type IMAP struct {
	srv        *imapserver.Server
	Addr       string
	user, pass string
	serving    chan struct{}
}

// StartIMAP serves user's mailboxes (INBOX first) on 127.0.0.1. Plain
// LOGIN without TLS is allowed: loopback only.
func StartIMAP(user, pass string, mailboxes ...string) (*IMAP, error) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pass)
	for _, mb := range append([]string{"INBOX"}, mailboxes...) {
		if err := u.Create(mb, nil); err != nil {
			return nil, err
		}
	}
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sl := &servingListener{Listener: ln, serving: make(chan struct{})}
	go srv.Serve(sl)
	return &IMAP{srv: srv, Addr: ln.Addr().String(), user: user, pass: pass, serving: sl.serving}, nil
}

// Close stops the server. It first waits (briefly) until Serve runs:
// go-imap's Serve joins Close's WaitGroup late, and a Close before that is
// a data race.
func (s *IMAP) Close() error {
	select {
	case <-s.serving:
	case <-time.After(5 * time.Second):
	}
	return s.srv.Close()
}

// servingListener closes serving when Serve first calls Accept.
type servingListener struct {
	net.Listener
	serving chan struct{}
	once    sync.Once
}

func (l *servingListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.serving) })
	return l.Listener.Accept()
}

func (s *IMAP) client() (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(s.user, s.pass).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Address is where the server listens.
func (s *IMAP) Address() string { return s.Addr }

// Deliver appends raw to INBOX, as the MX would.
func (s *IMAP) Deliver(raw []byte) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return appendTo(c, "INBOX", raw)
}

// Count returns how many messages mailbox holds.
func (s *IMAP) Count(mailbox string) (int, error) {
	c, err := s.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return count(c, mailbox)
}

// SMTP is a listener that accepts every message and hands it to Got.
type SMTP struct {
	srv  *smtp.Server
	Addr string
	Got  chan Mail

	mu   sync.Mutex
	fail *smtp.SMTPError
}

// Mail is one message the listener accepted.
type Mail struct {
	From string
	To   []string
	Raw  []byte
}

// StartSMTP listens on 127.0.0.1.
func StartSMTP() (*SMTP, error) {
	s := &SMTP{Got: make(chan Mail, 64)}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = ln.Addr().String()
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the listener.
func (s *SMTP) Close() error { return s.srv.Close() }

// FailWith makes the listener refuse every message with code (451, 550…)
// until called with 0: an outage or a refusal, on the wire.
func (s *SMTP) FailWith(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.fail = nil
		return
	}
	s.fail = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused by the test listener"}
}

// Wait returns the next accepted message, or an error when ctx ends first.
func (s *SMTP) Wait(ctx context.Context) (Mail, error) {
	select {
	case m := <-s.Got:
		return m, nil
	case <-ctx.Done():
		return Mail{}, fmt.Errorf("no mail arrived: %w", ctx.Err())
	}
}

type backend struct{ s *SMTP }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s   *SMTP
	cur Mail
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.s.mu.Lock()
	fail := s.s.fail
	s.s.mu.Unlock()
	if fail != nil {
		return fail
	}
	s.cur.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	s.cur.Raw = buf.Bytes()
	s.s.Got <- s.cur
	s.cur = Mail{}
	return nil
}

func (s *session) Reset()        { s.cur = Mail{} }
func (s *session) Logout() error { return nil }
