package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// IMAPConfig is what the watcher and the sent-folder helpers need to reach
// one mailbox. It is a plain struct so that cmd maps config.Config onto it and
// tests build it by hand; the zero values of the tuning fields mean defaults.
type IMAPConfig struct {
	Address          string        // host:port
	TLS              string        // "implicit", "starttls" or "none" (config refuses "none" off loopback)
	Username         string        // login name
	Password         string        // never logged
	Auth             string        // "login" (LOGIN command) or "plain" (AUTHENTICATE PLAIN); "" = "login"
	Mailbox          string        // watched mailbox; "" = "INBOX"
	ProcessedMailbox string        // handled mail is moved here; "" = flag it \Seen and leave it
	PollInterval     time.Duration // between checks when IDLE is off or not offered; 0 = 60s
	IDLE             bool          // use IDLE when the server offers it
	IdleRefresh      time.Duration // re-issue IDLE at least this often; 0 = 25m
	BatchSize        int           // UIDs per FETCH; 0 = 256
	TLSConfig        *tls.Config   // nil = system roots; ServerName defaults to the host of Address
	DialTimeout      time.Duration // TCP connect and TLS handshake; 0 = 15s
}

// Incoming is one message taken from the watched mailbox. Mailbox,
// UIDValidity and UID identify it on the server (for logs and audit); the
// store dedups on the content, since UIDs change when a mailbox is rebuilt.
type Incoming struct {
	Mailbox      string
	UIDValidity  uint32
	UID          uint32
	Raw          []byte
	InternalDate time.Time
	// Truncated is set when the mail was larger than MaxMessageBytes: Raw
	// holds its first MaxMessageBytes, and the whole mail stays on the
	// server (moved to the processed mailbox like any other).
	Truncated bool
}

// MaxMessageBytes bounds the memory one fetched mail may take. Real
// notices are kilobytes; the parser refuses anything larger anyway.
const MaxMessageBytes = 16 << 20

// CursorStore keeps, per mailbox, the UIDVALIDITY and the highest UID whose
// message (and every one below it) was delivered and marked handled. The
// watcher reads it once per connection and writes it after each batch, from
// one goroutine. A mailbox never seen before reads as (0, 0, nil).
type CursorStore interface {
	Cursor(ctx context.Context, mailbox string) (uidValidity, lastUID uint32, err error)
	SetCursor(ctx context.Context, mailbox string, uidValidity, lastUID uint32) error
}

const (
	imapDefaultPoll        = 60 * time.Second
	imapDefaultIdleRefresh = 25 * time.Minute
	imapDefaultBatch       = 256
	// imapBatchBytes bounds the mail a batch watcher holds in memory before
	// handing it over: a FETCH of BatchSize large mails is delivered in
	// parts. A single mail (up to MaxMessageBytes) always goes through.
	imapBatchBytes = 32 << 20
	// imapMarkBatch is how many delivered UIDs the watcher gathers before it
	// marks them handled with one MOVE or STORE (deliverAll says why).
	imapMarkBatch          = 4096
	imapDefaultDialTimeout = 15 * time.Second
	// imapCommandTimeout bounds the greeting, STARTTLS, authentication and
	// SELECT, and each short sent-folder session: go-imap itself waits for a
	// reply forever once a command is written.
	imapCommandTimeout = time.Minute
	// imapDoneTimeout bounds the wait for the server's answer to DONE, which
	// is where a silently dropped connection would otherwise hang the watcher.
	imapDoneTimeout = 30 * time.Second
)

// withDefaults fills the zero tuning fields and checks the two enumerations,
// so a typo that slipped past config fails Run at once instead of looping.
func (cfg IMAPConfig) withDefaults() (IMAPConfig, error) {
	if cfg.Mailbox == "" {
		cfg.Mailbox = "INBOX"
	}
	if cfg.Auth == "" {
		cfg.Auth = "login"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = imapDefaultPoll
	}
	if cfg.IdleRefresh <= 0 {
		cfg.IdleRefresh = imapDefaultIdleRefresh
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = imapDefaultBatch
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = imapDefaultDialTimeout
	}
	switch cfg.TLS {
	case "implicit", "starttls", "none":
	default:
		return cfg, fmt.Errorf("imap tls %q: want implicit, starttls or none", cfg.TLS)
	}
	switch cfg.Auth {
	case "login", "plain":
	default:
		return cfg, fmt.Errorf("imap auth %q: want login or plain", cfg.Auth)
	}
	if _, _, err := net.SplitHostPort(cfg.Address); err != nil {
		return cfg, fmt.Errorf("imap address %q: %w", cfg.Address, err)
	}
	return cfg, nil
}

// imapTLSConfig returns the client TLS settings: the caller's, or the system
// roots, with ServerName taken from the address when unset so the
// certificate is always checked against the host we meant to reach.
func imapTLSConfig(cfg IMAPConfig) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		if host, _, err := net.SplitHostPort(cfg.Address); err == nil {
			tc.ServerName = host
		}
	}
	return tc
}

// imapConnect dials, secures and authenticates one connection. ctx is tied to
// the connection for its whole life: cancelling it closes the socket, which is
// the only way to interrupt go-imap. The returned stop detaches that hook; the
// caller defers it together with Close.
func imapConnect(ctx context.Context, cfg IMAPConfig, opts *imapclient.Options) (*imapclient.Client, func() bool, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout}
	raw, err := dialer.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", cfg.Address, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	fail := func(err error) (*imapclient.Client, func() bool, error) {
		stop()
		raw.Close()
		return nil, nil, err
	}
	// One watchdog for the whole setup: a server that accepts and then says
	// nothing must not hold the watcher forever.
	guard := time.AfterFunc(cfg.DialTimeout+imapCommandTimeout, func() { raw.Close() })
	defer guard.Stop()

	var c *imapclient.Client
	switch cfg.TLS {
	case "implicit":
		tc := imapTLSConfig(cfg)
		if tc.NextProtos == nil {
			tc.NextProtos = []string{"imap"}
		}
		conn := tls.Client(raw, tc)
		hctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		err := conn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("tls handshake with %s: %w", cfg.Address, err))
		}
		c = imapclient.New(conn, opts)
	case "starttls":
		o := *opts
		o.TLSConfig = imapTLSConfig(cfg)
		c, err = imapclient.NewStartTLS(raw, &o)
		if err != nil {
			return fail(fmt.Errorf("starttls with %s: %w", cfg.Address, err))
		}
	default:
		c = imapclient.New(raw, opts)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return fail(fmt.Errorf("greeting from %s: %w", cfg.Address, err))
	}
	if err := imapAuthenticate(c, cfg); err != nil {
		c.Close()
		return fail(err)
	}
	if !guard.Stop() {
		c.Close()
		return fail(fmt.Errorf("imap setup with %s: timed out after %s", cfg.Address, cfg.DialTimeout+imapCommandTimeout))
	}
	return c, stop, nil
}

// imapAuthenticate logs in with the configured mechanism. Its errors name the
// user and the server's answer, never the password.
func imapAuthenticate(c *imapclient.Client, cfg IMAPConfig) error {
	var err error
	switch cfg.Auth {
	case "plain":
		err = c.Authenticate(sasl.NewPlainClient("", cfg.Username, cfg.Password))
	default:
		err = c.Login(cfg.Username, cfg.Password).Wait()
	}
	if err != nil {
		return fmt.Errorf("imap %s as %q: %w", cfg.Auth, cfg.Username, err)
	}
	return nil
}

// imapHasCode reports whether err is a server status reply with the given
// response code (TRYCREATE, NONEXISTENT…): the one place we decide on a
// server's answer by behaviour rather than by its text.
func imapHasCode(err error, code imap.ResponseCode) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == code
}
