package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig says how the daemon reaches its submission server. It mirrors
// the [smtp] section of the config, which has already refused tls = "none"
// to anything but loopback.
type SMTPConfig struct {
	Address   string        // host:port
	TLS       string        // "implicit", "starttls" or "none"
	Username  string        // "" sends without AUTH
	Password  string        // never appears in an error
	HELO      string        // "" lets the client choose ("localhost")
	Timeout   time.Duration // the whole conversation; 0 means 30s
	TLSConfig *tls.Config   // nil: system roots, ServerName from Address
}

// smtpDefaultTimeout bounds a conversation when SMTPConfig.Timeout is 0.
const smtpDefaultTimeout = 30 * time.Second

// smtpIdleTimeout is how long an unused connection stays open. A backlog
// sends its mails back to back on one connection; a daemon that sends a few
// mails a day should not hold one open for hours, and servers drop idle
// clients after a few minutes anyway (Postfix: 300 s).
const smtpIdleTimeout = 30 * time.Second

// Sender delivers composed mail to the submission server. It keeps one
// connection open between mails (greeting, TLS and AUTH once, then one
// MAIL/RCPT/DATA transaction per mail) and closes it after smtpIdleTimeout
// unused or on any failure. Sends are serialised on that connection. It is
// safe for concurrent use.
type Sender struct {
	cfg         SMTPConfig
	idleTimeout time.Duration // smtpIdleTimeout; tests shorten it

	mu       sync.Mutex
	conn     *smtpConn // nil: none open
	lastUsed time.Time
	idle     *time.Timer
}

// smtpConn is one open, greeted and authenticated connection.
type smtpConn struct {
	raw net.Conn
	dc  *smtpDeadlineConn
	c   *smtp.Client
	// used is set once a mail went through: a failure before DATA on a
	// connection that sat idle may only mean the server dropped it.
	used bool
}

// NewSender returns a Sender for cfg. It does not connect: a server that is
// down at start-up must not stop the daemon, only delay its mail.
func NewSender(cfg SMTPConfig) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = smtpDefaultTimeout
	}
	return &Sender{cfg: cfg, idleTimeout: smtpIdleTimeout}
}

// smtpPermanentError marks a failure that the same attempt would meet
// again: a 5xx reply, or a request this Sender refuses to make.
type smtpPermanentError struct{ err error }

func (e *smtpPermanentError) Error() string { return e.err.Error() }
func (e *smtpPermanentError) Unwrap() error { return e.err }

// IsPermanent tells the daemon whether to give up on a mail (a 5xx reply, a
// request this Sender refuses) or to retry it later (a 4xx reply, a network
// error, a timeout, a cancelled context).
func IsPermanent(err error) bool {
	var p *smtpPermanentError
	if errors.As(err, &p) {
		return true
	}
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code/100 == 5
}

// Send delivers raw to the recipients in one SMTP transaction: either every
// recipient is accepted and the data is queued, or nothing is sent and the
// error says why. Cancelling ctx closes the connection at once; the
// conversation, a reconnect included, is bounded by SMTPConfig.Timeout.
//
// The transaction runs on the kept connection when there is one. If that
// connection fails before the DATA command was accepted (the server
// dropped it while idle, or answered 421), nothing can have been queued, so
// Send dials once more and runs the transaction on the new connection. A
// failure after DATA is returned as it is: the server may have the mail,
// and only the caller may decide to send it again.
func (s *Sender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if len(to) == 0 {
		return &smtpPermanentError{errors.New("smtp: no recipients")}
	}
	switch s.cfg.TLS {
	case "implicit", "starttls", "none":
	default:
		return &smtpPermanentError{fmt.Errorf("smtp: unknown TLS mode %q (want implicit, starttls or none)", s.cfg.TLS)}
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.conn == nil {
			conn, err := s.dial(ctx, deadline)
			if err != nil {
				return err
			}
			s.conn = conn
		}
		conn := s.conn
		dataSent, err := s.transact(ctx, conn, deadline, from, to, raw)
		if err == nil {
			conn.used = true
			s.lastUsed = time.Now()
			s.armIdle()
			return nil
		}
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if isReply && se.Code != 421 && ctx.Err() == nil {
			// The server refused this mail and is still talking to us:
			// RSET ends the transaction so the connection can carry the
			// next one. If even that fails, start afresh next time.
			if rerr := s.reset(conn, deadline); rerr != nil {
				s.drop()
			} else {
				conn.used = true
				s.lastUsed = time.Now()
				s.armIdle()
			}
			return s.smtpFail(ctx, "send", err)
		}
		// The connection is broken (or being closed, 421). On a fresh
		// connection that is the server's answer; on a kept one it may only
		// be staleness, and a new connection (never more than one) tells.
		s.drop()
		if conn.used && !dataSent && ctx.Err() == nil && time.Now().Before(deadline) {
			continue
		}
		return s.smtpFail(ctx, "send", err)
	}
}

// transact runs MAIL, RCPT and DATA on conn. dataSent reports whether the
// server accepted the DATA command, after which a failure leaves it unknown
// whether the mail was queued.
func (s *Sender) transact(ctx context.Context, conn *smtpConn, deadline time.Time, from string, to []string, raw []byte) (dataSent bool, err error) {
	// Closing the socket is the only way to interrupt a blocked read in the
	// SMTP client, which takes no context.
	stop := context.AfterFunc(ctx, func() { conn.raw.Close() })
	defer stop()
	conn.dc.deadline = deadline
	if err := conn.dc.SetDeadline(time.Time{}); err != nil {
		return false, err
	}
	var opts *smtp.MailOptions // as go-smtp's SendMail: SMTPUTF8 only when an address needs it
	if !smtpIsASCII(from) || slices.ContainsFunc(to, func(a string) bool { return !smtpIsASCII(a) }) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := conn.c.Mail(from, opts); err != nil {
		return false, err
	}
	for _, addr := range to {
		if err := conn.c.Rcpt(addr, nil); err != nil {
			return false, err
		}
	}
	w, err := conn.c.Data()
	if err != nil {
		return false, err
	}
	if _, err := w.Write(raw); err != nil {
		w.Close()
		return true, err
	}
	return true, w.Close()
}

// dial opens, greets and authenticates a new connection.
func (s *Sender) dial(ctx context.Context, deadline time.Time) (*smtpConn, error) {
	dialer := net.Dialer{Deadline: deadline}
	raw, err := dialer.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return nil, s.smtpFail(ctx, "connect", err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	dc := &smtpDeadlineConn{Conn: raw, deadline: deadline}
	if err := dc.SetDeadline(time.Time{}); err != nil {
		raw.Close()
		return nil, s.smtpFail(ctx, "set deadline", err)
	}
	c, err := s.smtpHello(ctx, dc)
	if err != nil {
		raw.Close()
		return nil, err
	}
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout
	if s.cfg.Username != "" {
		if err := s.smtpAuth(ctx, c, raw); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &smtpConn{raw: raw, dc: dc, c: c}, nil
}

// reset sends RSET after a refused transaction.
func (s *Sender) reset(conn *smtpConn, deadline time.Time) error {
	conn.dc.deadline = deadline
	return conn.c.Reset()
}

// drop closes the kept connection without a QUIT: it is broken, or its
// state is unknown. Call with mu held.
func (s *Sender) drop() {
	if s.conn != nil {
		s.conn.c.Close()
		s.conn = nil
	}
}

// armIdle (re)starts the timer that closes the connection once unused for
// idleTimeout. Call with mu held.
func (s *Sender) armIdle() {
	if s.idle == nil {
		s.idle = time.AfterFunc(s.idleTimeout, s.closeIdle)
		return
	}
	s.idle.Reset(s.idleTimeout)
}

func (s *Sender) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A Send that ran meanwhile has re-armed the timer; the connection is
	// idle only if nothing used it for the whole period.
	if s.conn == nil || time.Since(s.lastUsed) < s.idleTimeout {
		return
	}
	s.quit()
}

// Close ends the kept connection with QUIT, if one is open. The Sender
// stays usable: the next Send dials again.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	s.quit()
	return nil
}

// quit says goodbye politely but briefly. Call with mu held.
func (s *Sender) quit() {
	if s.conn == nil {
		return
	}
	s.conn.dc.deadline = time.Now().Add(5 * time.Second)
	// Mail already accepted stays accepted: a failed QUIT changes nothing.
	_ = s.conn.c.Quit()
	s.drop()
}

// smtpIsASCII reports whether an address needs SMTPUTF8.
func smtpIsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// smtpHello sets up TLS as configured and greets the server.
func (s *Sender) smtpHello(ctx context.Context, conn net.Conn) (*smtp.Client, error) {
	helo := s.cfg.HELO
	if helo == "" {
		helo = "localhost"
	}
	var c *smtp.Client
	switch s.cfg.TLS {
	case "implicit":
		tc := tls.Client(conn, s.smtpTLSConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, s.smtpFail(ctx, "TLS handshake", err)
		}
		c = smtp.NewClient(tc)
	case "starttls":
		// go-smtp greets as "localhost" before STARTTLS and lets us choose
		// the name only for the EHLO that follows it, which is the one the
		// server records.
		var err error
		c, err = smtp.NewClientStartTLS(conn, s.smtpTLSConfig())
		if err != nil {
			return nil, s.smtpFail(ctx, "STARTTLS", err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	if err := c.Hello(helo); err != nil {
		c.Close()
		return nil, s.smtpFail(ctx, "EHLO", err)
	}
	return c, nil
}

// smtpAuth runs AUTH PLAIN, which sends the password in the clear inside
// the session: it is allowed only under TLS or to a loopback peer.
func (s *Sender) smtpAuth(ctx context.Context, c *smtp.Client, conn net.Conn) error {
	if _, isTLS := c.TLSConnectionState(); !isTLS && !smtpIsLoopback(conn.RemoteAddr()) {
		return &smtpPermanentError{fmt.Errorf("smtp %s: refusing AUTH without TLS to a non-loopback server", s.cfg.Address)}
	}
	if !c.SupportsAuth(sasl.Plain) {
		return &smtpPermanentError{fmt.Errorf("smtp %s: server does not offer AUTH PLAIN", s.cfg.Address)}
	}
	if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
		return s.smtpFail(ctx, "AUTH PLAIN as "+s.cfg.Username, err)
	}
	return nil
}

// smtpTLSConfig is the configured TLS config with a ServerName, so that
// the certificate is checked against the host we meant to reach.
func (s *Sender) smtpTLSConfig() *tls.Config {
	var cfg *tls.Config
	if s.cfg.TLSConfig != nil {
		cfg = s.cfg.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(s.cfg.Address)
		if err != nil {
			host = s.cfg.Address
		}
		cfg.ServerName = host
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// smtpFail wraps err with where it happened. A cancelled context wins over
// the "use of closed connection" its closing causes, and a deadline is
// reported as the conversation's timeout.
func (s *Sender) smtpFail(ctx context.Context, stage string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("smtp %s: %s: %w", s.cfg.Address, stage, ctx.Err())
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("smtp %s: %s: conversation took longer than %s: %w", s.cfg.Address, stage, s.cfg.Timeout, err)
	}
	return fmt.Errorf("smtp %s: %s: %w", s.cfg.Address, stage, err)
}

// smtpIsLoopback reports whether addr is a loopback IP address.
func smtpIsLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// smtpDeadlineConn caps every deadline at the conversation's deadline.
// go-smtp sets a fresh deadline per command and clears it afterwards, which
// would otherwise undo a single deadline set on the socket.
type smtpDeadlineConn struct {
	net.Conn
	deadline time.Time
}

func (c *smtpDeadlineConn) capped(t time.Time) time.Time {
	if t.IsZero() || t.After(c.deadline) {
		return c.deadline
	}
	return t
}

func (c *smtpDeadlineConn) SetDeadline(t time.Time) error {
	return c.Conn.SetDeadline(c.capped(t))
}

func (c *smtpDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.capped(t))
}

func (c *smtpDeadlineConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.capped(t))
}
