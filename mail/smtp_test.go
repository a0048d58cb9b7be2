package mail

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpTestServer is a real go-smtp server on 127.0.0.1:0 that records what
// it receives and can be told to fail a command.
type smtpTestServer struct {
	addr string
	pool *x509.CertPool // trusts the server's self-signed certificate

	user, pass string          // AUTH PLAIN credentials; "" offers no AUTH
	rcptErr    *smtp.SMTPError // returned by RCPT
	dataErr    *smtp.SMTPError // returned by DATA
	authErr    *smtp.SMTPError // returned by AUTH instead of checking

	mu       sync.Mutex
	got      []smtpCaptured
	done     chan struct{}
	sessions []*smtp.Conn               // every connection accepted, in order
	refuse   map[string]*smtp.SMTPError // RCPT of these addresses fails
	mail421  int                        // the next mail421 MAIL commands get 421
}

type smtpCaptured struct {
	user, from string
	helo       string
	to         []string
	data       []byte
	tls        bool
}

type smtpTestOptions struct {
	mode         string // "none", "starttls", "implicit"
	user, pass   string
	insecureAuth bool
	rcptErr      *smtp.SMTPError
	dataErr      *smtp.SMTPError
	authErr      *smtp.SMTPError
	noSTARTTLS   bool // a plain server even for starttls clients
}

func newSMTPTestServer(t *testing.T, o smtpTestOptions) *smtpTestServer {
	t.Helper()
	ts := &smtpTestServer{user: o.user, pass: o.pass, rcptErr: o.rcptErr, dataErr: o.dataErr,
		authErr: o.authErr, done: make(chan struct{}, 8)}
	cert, pool := smtpTestCert(t)
	ts.pool = pool
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		ts.mu.Lock()
		// go-smtp opens a second session on the same Conn after STARTTLS.
		if !slices.Contains(ts.sessions, c) {
			ts.sessions = append(ts.sessions, c)
		}
		ts.mu.Unlock()
		_, isTLS := c.TLSConnectionState()
		return &smtpTestSession{ts: ts, cur: smtpCaptured{tls: isTLS}, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.AllowInsecureAuth = o.insecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch o.mode {
	case "starttls":
		if !o.noSTARTTLS {
			srv.TLSConfig = tlsCfg
		}
	case "implicit":
		ln = tls.NewListener(ln, tlsCfg)
	}
	ts.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ts
}

func (ts *smtpTestServer) captured() []smtpCaptured {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]smtpCaptured(nil), ts.got...)
}

type smtpTestSession struct {
	ts   *smtpTestServer
	conn *smtp.Conn
	cur  smtpCaptured
}

func (s *smtpTestSession) AuthMechanisms() []string {
	if s.ts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpTestSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if s.ts.authErr != nil {
			return s.ts.authErr
		}
		if user != s.ts.user || pass != s.ts.pass {
			return smtp.ErrAuthFailed
		}
		s.cur.user = user
		return nil
	}), nil
}

func (s *smtpTestSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ts.user != "" && s.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	s.ts.mu.Lock()
	fail421 := s.ts.mail421 > 0
	if fail421 {
		s.ts.mail421--
	}
	s.ts.mu.Unlock()
	if fail421 {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "idle too long, closing (test)"}
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.helo = s.conn.Hostname()
	s.cur.from = from
	return nil
}

func (s *smtpTestSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.rcptErr != nil {
		return s.ts.rcptErr
	}
	s.ts.mu.Lock()
	refused := s.ts.refuse[to]
	s.ts.mu.Unlock()
	if refused != nil {
		return refused
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpTestSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.ts.dataErr != nil {
		return s.ts.dataErr
	}
	s.cur.data = b
	s.ts.mu.Lock()
	s.ts.got = append(s.ts.got, s.cur)
	s.ts.mu.Unlock()
	s.ts.done <- struct{}{}
	return nil
}

func (s *smtpTestSession) Reset()        { s.cur = smtpCaptured{user: s.cur.user, tls: s.cur.tls} }
func (s *smtpTestSession) Logout() error { return nil }

// smtpTestCert makes a self-signed certificate for 127.0.0.1.
func smtpTestCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtp test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// smtpTestMessage has CRLF line ends, a dot-stuffed line, a line that is a
// lone dot and non-ASCII quoted-printable text, so byte-exact delivery is a
// real check of the DATA encoding.
const smtpTestMessage = "From: abuse@example.com\r\nTo: ops@example.com\r\nSubject: test\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	".leading dot\r\n.\r\nGr=C3=BC=C3=9Fe\r\n"

func TestSendDelivers(t *testing.T) {
	tests := []struct {
		name string
		opts smtpTestOptions
		cfg  SMTPConfig
		tls  bool
	}{
		{"plain loopback, no auth", smtpTestOptions{mode: "none"}, SMTPConfig{TLS: "none"}, false},
		{"plain loopback, auth", smtpTestOptions{mode: "none", user: "u", pass: "p", insecureAuth: true},
			SMTPConfig{TLS: "none", Username: "u", Password: "p", HELO: "responder.example.com"}, false},
		{"starttls, auth", smtpTestOptions{mode: "starttls", user: "abuse", pass: "s3cret"},
			SMTPConfig{TLS: "starttls", Username: "abuse", Password: "s3cret", HELO: "responder.example.com"}, true},
		{"implicit TLS, auth", smtpTestOptions{mode: "implicit", user: "abuse", pass: "s3cret"},
			SMTPConfig{TLS: "implicit", Username: "abuse", Password: "s3cret"}, true},
		{"implicit TLS, no auth", smtpTestOptions{mode: "implicit"}, SMTPConfig{TLS: "implicit"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newSMTPTestServer(t, tt.opts)
			cfg := tt.cfg
			cfg.Address = ts.addr
			cfg.TLSConfig = &tls.Config{RootCAs: ts.pool}
			to := []string{"ops@example.com", "alice@example.com"}
			if err := NewSender(cfg).Send(context.Background(), "abuse@example.com", to, []byte(smtpTestMessage)); err != nil {
				t.Fatalf("Send() = %v", err)
			}
			got := ts.captured()
			if len(got) != 1 {
				t.Fatalf("server got %d messages, want 1", len(got))
			}
			m := got[0]
			if string(m.data) != smtpTestMessage {
				t.Errorf("delivered data =\n%q\nwant\n%q", m.data, smtpTestMessage)
			}
			if m.from != "abuse@example.com" || strings.Join(m.to, ",") != strings.Join(to, ",") {
				t.Errorf("envelope = %s → %v, want abuse@example.com → %v", m.from, m.to, to)
			}
			if m.user != tt.opts.user {
				t.Errorf("authenticated as %q, want %q", m.user, tt.opts.user)
			}
			wantHELO := tt.cfg.HELO
			if wantHELO == "" {
				wantHELO = "localhost"
			}
			if m.helo != wantHELO {
				t.Errorf("EHLO name = %q, want %q", m.helo, wantHELO)
			}
			if m.tls != tt.tls {
				t.Errorf("TLS = %v, want %v", m.tls, tt.tls)
			}
		})
	}
}

func TestSendErrorClass(t *testing.T) {
	tempFail := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	permFail := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	authTemp := &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "auth backend down"}
	tests := []struct {
		name      string
		opts      smtpTestOptions
		cfg       SMTPConfig
		permanent bool
	}{
		{"451 on RCPT", smtpTestOptions{mode: "none", rcptErr: tempFail}, SMTPConfig{TLS: "none"}, false},
		{"550 on RCPT", smtpTestOptions{mode: "none", rcptErr: permFail}, SMTPConfig{TLS: "none"}, true},
		{"451 after DATA", smtpTestOptions{mode: "none", dataErr: tempFail}, SMTPConfig{TLS: "none"}, false},
		{"554 after DATA", smtpTestOptions{mode: "none", dataErr: &smtp.SMTPError{Code: 554, Message: "rejected"}},
			SMTPConfig{TLS: "none"}, true},
		{"wrong password", smtpTestOptions{mode: "starttls", user: "abuse", pass: "right"},
			SMTPConfig{TLS: "starttls", Username: "abuse", Password: "wrong-Pa55"}, true},
		{"454 on AUTH", smtpTestOptions{mode: "implicit", user: "abuse", pass: "Pa55-word", authErr: authTemp},
			SMTPConfig{TLS: "implicit", Username: "abuse", Password: "Pa55-word"}, false},
		{"server offers no AUTH", smtpTestOptions{mode: "starttls"},
			SMTPConfig{TLS: "starttls", Username: "abuse", Password: "Pa55-word"}, true},
		{"server offers no STARTTLS", smtpTestOptions{mode: "starttls", noSTARTTLS: true},
			SMTPConfig{TLS: "starttls"}, false},
		{"untrusted certificate", smtpTestOptions{mode: "implicit"}, SMTPConfig{TLS: "implicit"}, false},
		{"unknown TLS mode", smtpTestOptions{mode: "none"}, SMTPConfig{TLS: "tls"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newSMTPTestServer(t, tt.opts)
			cfg := tt.cfg
			cfg.Address = ts.addr
			if tt.name != "untrusted certificate" {
				cfg.TLSConfig = &tls.Config{RootCAs: ts.pool}
			}
			err := NewSender(cfg).Send(context.Background(), "abuse@example.com", []string{"x@example.com"}, []byte(smtpTestMessage))
			if err == nil {
				t.Fatal("Send() = nil, want an error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tt.permanent, tt.permanent)
			}
			if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("Send() error %q contains the password", err)
			}
			if n := len(ts.captured()); n != 0 {
				t.Errorf("server got %d messages after a failure, want 0", n)
			}
		})
	}
}

func TestSMTPIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1": true, "127.9.9.9": true, "::1": true, "192.0.2.1": false, "2001:db8::1": false} {
		if got := smtpIsLoopback(&net.TCPAddr{IP: net.ParseIP(addr), Port: 25}); got != want {
			t.Errorf("smtpIsLoopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestSendNoRecipients(t *testing.T) {
	err := NewSender(SMTPConfig{Address: "127.0.0.1:1", TLS: "none"}).Send(context.Background(), "a@example.com", nil, []byte("x"))
	if err == nil || !IsPermanent(err) {
		t.Errorf("Send(no recipients) = %v, want a permanent error", err)
	}
}

func TestSendListenerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = NewSender(SMTPConfig{Address: addr, TLS: "none"}).Send(context.Background(), "a@example.com", []string{"b@example.com"}, []byte("x"))
	if err == nil || IsPermanent(err) {
		t.Errorf("Send(to a closed port) = %v, want a temporary error", err)
	}
}

// smtpSilentListener accepts connections and never says anything, like a
// server that hangs before its greeting.
func smtpSilentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestSendCancel(t *testing.T) {
	addr := smtpSilentListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := NewSender(SMTPConfig{Address: addr, TLS: "none", Timeout: time.Minute}).
		Send(ctx, "a@example.com", []string{"b@example.com"}, []byte("x"))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Send() returned %s after cancel, want promptly", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send() after cancel = %v, want context.Canceled", err)
	}
	if IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = true, want false", err)
	}
}

func TestSendTimeout(t *testing.T) {
	addr := smtpSilentListener(t)
	for _, mode := range []string{"none", "implicit", "starttls"} {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			err := NewSender(SMTPConfig{Address: addr, TLS: mode, Timeout: 300 * time.Millisecond}).
				Send(context.Background(), "a@example.com", []string{"b@example.com"}, []byte("x"))
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Send() took %s with a 300ms timeout", took)
			}
			if err == nil || IsPermanent(err) {
				t.Errorf("Send(silent server) = %v, want a temporary error", err)
			}
		})
	}
}

// connections is how many connections the server has accepted.
func (ts *smtpTestServer) connections() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.sessions)
}

// dropAll closes every connection from the server's side, as a server
// that restarts or times its clients out does.
func (ts *smtpTestServer) dropAll() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.sessions {
		c.Conn().Close()
	}
}

// sendN sends n numbered mails, each with its own Subject.
func sendN(t *testing.T, s *Sender, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		raw := strings.Replace(smtpTestMessage, "Subject: test", fmt.Sprintf("Subject: test %d", i), 1)
		if err := s.Send(context.Background(), "abuse@example.com", []string{"ops@example.com"}, []byte(raw)); err != nil {
			t.Fatalf("Send(mail %d) = %v", i, err)
		}
	}
}

// subjects lists the Subject of every mail the server took, in order.
func (ts *smtpTestServer) subjects() []string {
	var out []string
	for _, m := range ts.captured() {
		_, rest, _ := strings.Cut(string(m.data), "Subject: ")
		subj, _, _ := strings.Cut(rest, "\r\n")
		out = append(out, subj)
	}
	return out
}

func wantSubjects(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("test %d", i))
	}
	return out
}

// Several mails go over one connection, each its own transaction, with or
// without TLS and AUTH, which happen once.
func TestSendKeepsConnection(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts smtpTestOptions
		cfg  SMTPConfig
	}{
		{"plain", smtpTestOptions{mode: "none"}, SMTPConfig{TLS: "none"}},
		{"starttls, auth", smtpTestOptions{mode: "starttls", user: "abuse", pass: "s3cret"},
			SMTPConfig{TLS: "starttls", Username: "abuse", Password: "s3cret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newSMTPTestServer(t, tt.opts)
			cfg := tt.cfg
			cfg.Address = ts.addr
			cfg.TLSConfig = &tls.Config{RootCAs: ts.pool}
			s := NewSender(cfg)
			defer s.Close()
			sendN(t, s, 0, 5)
			if got := ts.subjects(); !slices.Equal(got, wantSubjects(5)) {
				t.Errorf("server got %v, want each mail once, in order", got)
			}
			if n := ts.connections(); n != 1 {
				t.Errorf("%d connections for 5 mails, want 1", n)
			}
			for _, m := range ts.captured() {
				if m.user != tt.opts.user || len(m.to) != 1 {
					t.Errorf("mail %+v: want user %q and one recipient (no leftovers from the previous transaction)", m, tt.opts.user)
				}
			}
		})
	}
}

// A connection the server dropped while it sat idle is redialled, and the
// mail goes out once on the new one.
func TestSendRedialsDroppedConnection(t *testing.T) {
	ts := newSMTPTestServer(t, smtpTestOptions{mode: "none"})
	s := NewSender(SMTPConfig{Address: ts.addr, TLS: "none", Timeout: 5 * time.Second})
	defer s.Close()
	sendN(t, s, 0, 2)
	ts.dropAll()
	sendN(t, s, 2, 2)
	if n := ts.connections(); n != 2 {
		t.Errorf("%d connections, want 2: one redial after the drop", n)
	}
	// A 421 ("closing the channel") on MAIL is a dropped connection too.
	ts.mu.Lock()
	ts.mail421 = 1
	ts.mu.Unlock()
	sendN(t, s, 4, 1)
	if n := ts.connections(); n != 3 {
		t.Errorf("%d connections after a 421, want 3", n)
	}
	if got := ts.subjects(); !slices.Equal(got, wantSubjects(5)) {
		t.Errorf("server got %v, want each mail once", got)
	}
	// A server that keeps failing is not redialled in a loop: one
	// redial, then the error.
	ts.mu.Lock()
	ts.mail421 = 2
	ts.mu.Unlock()
	err := s.Send(context.Background(), "abuse@example.com", []string{"ops@example.com"}, []byte(smtpTestMessage))
	if err == nil || IsPermanent(err) {
		t.Errorf("Send(421 twice) = %v, want a temporary error", err)
	}
	if n := ts.connections(); n != 4 {
		t.Errorf("%d connections after 421 twice, want 4 (one redial)", n)
	}
	// A fresh connection that fails is not redialled: the failure is the
	// server's answer, not a stale connection.
	ts.mu.Lock()
	ts.mail421 = 1
	ts.mu.Unlock()
	if err := s.Send(context.Background(), "abuse@example.com", []string{"ops@example.com"}, []byte(smtpTestMessage)); err == nil {
		t.Error("Send(421 on a new connection) = nil, want an error")
	}
	if n := ts.connections(); n != 5 {
		t.Errorf("%d connections, want 5", n)
	}
}

// A refused mail leaves the connection usable: RSET, and the next mail goes
// out on it. 4xx stays temporary and 5xx permanent.
func TestSendRefusalKeepsConnection(t *testing.T) {
	ts := newSMTPTestServer(t, smtpTestOptions{mode: "none"})
	ts.refuse = map[string]*smtp.SMTPError{
		"gone@example.com": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
		"busy@example.com": {Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"},
	}
	s := NewSender(SMTPConfig{Address: ts.addr, TLS: "none", Timeout: 5 * time.Second})
	defer s.Close()
	sendN(t, s, 0, 1)
	err := s.Send(context.Background(), "abuse@example.com", []string{"ops@example.com", "gone@example.com"}, []byte(smtpTestMessage))
	if !IsPermanent(err) {
		t.Errorf("Send(550 on RCPT) = %v, want permanent", err)
	}
	err = s.Send(context.Background(), "abuse@example.com", []string{"busy@example.com"}, []byte(smtpTestMessage))
	if err == nil || IsPermanent(err) {
		t.Errorf("Send(451 on RCPT) = %v, want temporary", err)
	}
	sendN(t, s, 1, 1)
	if got := ts.subjects(); !slices.Equal(got, wantSubjects(2)) {
		t.Errorf("server got %v, want only the two good mails", got)
	}
	if n := ts.connections(); n != 1 {
		t.Errorf("%d connections, want 1: a refusal is no reason to reconnect", n)
	}
	if m := ts.captured()[1]; len(m.to) != 1 || m.to[0] != "ops@example.com" {
		t.Errorf("second mail went to %v, want only ops@example.com: RSET forgets the refused transaction", m.to)
	}
}

// An unused connection is closed with QUIT after the idle timeout; the next
// mail dials again.
func TestSendClosesIdleConnection(t *testing.T) {
	ts := newSMTPTestServer(t, smtpTestOptions{mode: "none"})
	s := NewSender(SMTPConfig{Address: ts.addr, TLS: "none", Timeout: 5 * time.Second})
	s.idleTimeout = 50 * time.Millisecond
	defer s.Close()
	sendN(t, s, 0, 1)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		open := s.conn != nil
		s.mu.Unlock()
		if !open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sendN(t, s, 1, 1)
	if n := ts.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
