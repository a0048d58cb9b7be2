package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
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

// Sender delivers composed mail to the submission server, one connection
// per message: the daemon sends a few mails a day, so a pooled connection
// would only add states to get wrong. It is safe for concurrent use.
type Sender struct {
	cfg SMTPConfig
}

// NewSender returns a Sender for cfg. It does not connect: a server that is
// down at start-up must not stop the daemon, only delay its mail.
func NewSender(cfg SMTPConfig) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = smtpDefaultTimeout
	}
	return &Sender{cfg: cfg}
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
// error says why. Cancelling ctx closes the connection at once; the whole
// conversation is bounded by SMTPConfig.Timeout.
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
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return s.smtpFail(ctx, "connect", err)
	}
	defer conn.Close()
	// Closing the socket is the only way to interrupt a blocked read in the
	// SMTP client, which takes no context.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	dc := &smtpDeadlineConn{Conn: conn, deadline: deadline}
	if err := dc.SetDeadline(time.Time{}); err != nil {
		return s.smtpFail(ctx, "set deadline", err)
	}

	c, err := s.smtpHello(ctx, dc)
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout

	if s.cfg.Username != "" {
		if err := s.smtpAuth(ctx, c, conn); err != nil {
			return err
		}
	}
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return s.smtpFail(ctx, "send", err)
	}
	// The data is queued once the server accepted it; a failed QUIT must not
	// make the daemon send the mail a second time.
	_ = c.Quit()
	return nil
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
