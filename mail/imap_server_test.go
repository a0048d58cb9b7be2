package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// The in-memory IMAP server the unit tests run against, on 127.0.0.1:0. It
// can be stopped and started again on the same address with the same
// mailboxes, which is how the tests cut the watcher's connection.

const (
	imapTestUser     = "abuse@example.org"
	imapTestPassword = "pw-7c1f-never-in-logs"
)

type imapTestServer struct {
	t     *testing.T
	mode  string      // "none", "starttls" or "implicit"
	caps  imap.CapSet // nil = IMAP4rev1 + rev2 (IDLE, MOVE, UIDPLUS…)
	strip string      // a capability to hide from the client, e.g. " IDLE"
	user  *imapmemserver.User
	addr  string

	mu      sync.Mutex
	srv     *imapserver.Server
	ln      net.Listener
	serving chan struct{} // closed when Serve first accepts
}

type imapTestServerOpts struct {
	mode  string
	caps  imap.CapSet
	strip string
}

func newIMAPTestServer(t *testing.T, o imapTestServerOpts) *imapTestServer {
	t.Helper()
	if o.mode == "" {
		o.mode = "none"
	}
	ts := &imapTestServer{t: t, mode: o.mode, caps: o.caps, strip: o.strip}
	ts.user = imapmemserver.NewUser(imapTestUser, imapTestPassword)
	for _, name := range []string{"INBOX", "Processed"} {
		if err := ts.user.Create(name, nil); err != nil {
			t.Fatalf("Create(%s): %v", name, err)
		}
	}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

// start serves on the server's address (a fresh port the first time).
func (ts *imapTestServer) start() {
	ts.t.Helper()
	addr := ts.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ts.t.Fatalf("listen %s: %v", addr, err)
	}
	ts.addr = ln.Addr().String()
	srvTLS := &tls.Config{Certificates: []tls.Certificate{imapTestCert(ts.t).cert}}
	if ts.mode == "implicit" {
		ln = tls.NewListener(ln, srvTLS)
	}
	if ts.strip != "" {
		ln = imapStripListener{Listener: ln, strip: ts.strip}
	}
	caps := ts.caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	}
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapTestSession{user: ts.user}, nil, nil
		},
		Caps:         caps,
		Logger:       log.New(io.Discard, "", 0),
		InsecureAuth: ts.mode == "none",
	}
	if ts.mode == "starttls" {
		opts.TLSConfig = srvTLS // and no InsecureAuth: LOGIN works only after STARTTLS
	}
	srv := imapserver.New(opts)
	sl := &imapServingListener{Listener: ln, serving: make(chan struct{})}
	go srv.Serve(sl)
	ts.mu.Lock()
	ts.srv, ts.ln, ts.serving = srv, sl, sl.serving
	ts.mu.Unlock()
}

// imapServingListener tells when Serve first calls Accept. go-imap's Serve
// registers itself with Server.Close's WaitGroup just before that, so a
// Close that runs earlier races with it (the race detector sees an Add
// concurrent with Wait); stop waits for this signal first.
type imapServingListener struct {
	net.Listener
	serving chan struct{}
	once    sync.Once
}

func (l *imapServingListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.serving) })
	return l.Listener.Accept()
}

// stop closes the listener and every open connection.
func (ts *imapTestServer) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.srv != nil {
		select {
		case <-ts.serving:
		case <-time.After(5 * time.Second):
		}
		// Close the listener ourselves too: Server.Close misses one whose
		// Serve goroutine has not registered it yet.
		ts.ln.Close()
		ts.srv.Close()
		ts.srv, ts.ln = nil, nil
	}
}

// cfg is a watcher configuration for this server; tests adjust fields.
func (ts *imapTestServer) cfg() IMAPConfig { return imapTestConfig(ts.t, ts.addr, ts.mode) }

// imapTestConfig is the configuration for any server that uses the test
// certificate and account.
func imapTestConfig(t *testing.T, addr, mode string) IMAPConfig {
	return IMAPConfig{
		Address:          addr,
		TLS:              mode,
		Username:         imapTestUser,
		Password:         imapTestPassword,
		Auth:             "login",
		Mailbox:          "INBOX",
		ProcessedMailbox: "Processed",
		IDLE:             true,
		PollInterval:     time.Hour, // tests that poll say so
		TLSConfig:        &tls.Config{RootCAs: imapTestCert(t).pool},
		DialTimeout:      5 * time.Second,
	}
}

// add appends a message straight into the backend, as a delivery agent would.
func (ts *imapTestServer) add(mailbox, id string, flags ...imap.Flag) uint32 {
	ts.t.Helper()
	raw := imapTestMail(id)
	data, err := ts.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Flags: flags})
	if err != nil {
		ts.t.Fatalf("Append(%s, %s): %v", mailbox, id, err)
	}
	return uint32(data.UID)
}

// imapTestMail is a small message whose Message-ID is <id@test>.
func imapTestMail(id string) []byte {
	return []byte("From: AWS <ec2-abuse@amazon.com>\r\nTo: " + imapTestUser + "\r\n" +
		"Subject: test " + id + "\r\nMessage-ID: <" + id + "@test>\r\n" +
		"Date: Tue, 14 Apr 2026 03:12:09 +0000\r\n\r\nbody of " + id + "\r\n")
}

// imapTestID is the id imapTestMail put in raw.
func imapTestID(raw []byte) string {
	s := string(raw)
	i := strings.Index(s, "Message-ID: <")
	if i < 0 {
		return ""
	}
	s = s[i+len("Message-ID: <"):]
	return s[:strings.Index(s, "@test>")]
}

// imapTestSession is the memserver's session with IDLE replaced: the
// memserver answers "+ idling" before it subscribes to updates, so mail
// appended in between would not be announced until the next event. This one
// flushes pending updates every few milliseconds while idling, as a real
// server checks the mailbox on its own.
type imapTestSession struct {
	*imapmemserver.UserSession
	user *imapmemserver.User
}

func (s *imapTestSession) Login(username, password string) error {
	if err := s.user.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.user)
	return nil
}

func (s *imapTestSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// imapStripListener hides one capability from clients, to play a server
// that lacks it (the memserver always offers IDLE).
type imapStripListener struct {
	net.Listener
	strip string
}

func (l imapStripListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return imapStripConn{Conn: c, strip: []byte(l.strip)}, nil
}

type imapStripConn struct {
	net.Conn
	strip []byte
}

func (c imapStripConn) Write(p []byte) (int, error) {
	if !bytes.Contains(p, []byte("CAPABILITY")) {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, c.strip, nil)); err != nil {
		return 0, err
	}
	return len(p), nil
}

type imapTestCertData struct {
	cert tls.Certificate
	pool *x509.CertPool
}

var (
	imapTestCertOnce sync.Once
	imapTestCertVal  imapTestCertData
	imapTestCertErr  error
)

// imapTestCert is a self-signed certificate for 127.0.0.1, made once per run.
func imapTestCert(t *testing.T) imapTestCertData {
	t.Helper()
	imapTestCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			imapTestCertErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "127.0.0.1"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			imapTestCertErr = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			imapTestCertErr = err
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		imapTestCertVal = imapTestCertData{
			cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
			pool: pool,
		}
	})
	if imapTestCertErr != nil {
		t.Fatalf("make test certificate: %v", imapTestCertErr)
	}
	return imapTestCertVal
}

// imapTestCtx is a context bounded by the test's own deadline budget.
func imapTestCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
