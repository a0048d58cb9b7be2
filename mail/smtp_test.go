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
	"io"
	"log"
	"math/big"
	"net"
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

	mu   sync.Mutex
	got  []smtpCaptured
	done chan struct{}
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
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.helo = s.conn.Hostname()
	s.cur.from = from
	return nil
}

func (s *smtpTestSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.ts.rcptErr != nil {
		return s.ts.rcptErr
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
