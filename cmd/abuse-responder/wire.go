package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/daemon"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

// parts are the concrete pieces of a running daemon, wired from the config
// in one place.
type parts struct {
	store       *store.Store
	daemon      *daemon.Daemon
	watcher     *mail.Watcher
	metrics     *daemon.Metrics
	remediation *remediation // nil in report-only mode
	log         *slog.Logger
}

func (p *parts) Close() {
	if p.remediation != nil {
		p.remediation.Close()
	}
	if p.store != nil {
		p.store.Close()
	}
}

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func imapConfig(c config.IMAP) mail.IMAPConfig {
	return mail.IMAPConfig{
		Address: c.Address, TLS: string(c.TLS), Username: c.Username, Password: c.Password.Reveal(),
		Auth: string(c.Auth), Mailbox: c.Mailbox, ProcessedMailbox: c.ProcessedMailbox,
		PollInterval: c.PollInterval, IDLE: c.IDLE,
	}
}

func smtpConfig(c config.SMTP) mail.SMTPConfig {
	return mail.SMTPConfig{
		Address: c.Address, TLS: string(c.TLS), Username: c.Username, Password: c.Password.Reveal(),
		HELO: c.HELO, Timeout: c.Timeout,
	}
}

// wire builds the store, the daemon and the watcher from cfg.
func wire(ctx context.Context, cfg *config.Config, log *slog.Logger) (*parts, error) {
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	p := &parts{store: st, log: log}
	keyPath := cfg.Approval.SecretFile
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(cfg.Store.Path), "approval.key")
	}
	key, err := approval.LoadOrCreateKey(keyPath)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("approval key: %w", err)
	}
	p.metrics = daemon.NewMetrics(st)
	from := cfg.SMTP.From
	own := []string{strings.ToLower(from.Address)}
	if cfg.Approval.ReplyTo != nil {
		own = append(own, strings.ToLower(cfg.Approval.ReplyTo.Address))
	}
	dcfg := daemon.Config{
		Mode:                       daemon.Mode(cfg.Remediate.Mode),
		Senders:                    lower(cfg.Notices.Senders),
		Accounts:                   cfg.Notices.Accounts,
		RequireAuthenticatedNotice: cfg.Notices.RequireAuthenticatedSender,
		AuthservID:                 cfg.Approval.AuthservID,
		Approval: approval.Policy{
			Approvers: lower(cfg.Approval.Approvers), AuthservID: cfg.Approval.AuthservID,
			RequireAuth: cfg.Approval.RequireAuthenticatedSender, OwnAddresses: own,
		},
		From: from, SummaryTo: cfg.Approval.SummaryTo, ReplyTo: cfg.Approval.ReplyTo,
		Hostname: domainOf(from.Address), TokenTTL: cfg.Approval.TokenTTL, Reminders: cfg.Approval.Reminders,
		Contact: cfg.Reply.Contact, SentMailbox: cfg.IMAP.SentMailbox, IMAP: imapConfig(cfg.IMAP),
	}
	if cfg.Reply.Template != "" {
		b, err := os.ReadFile(cfg.Reply.Template)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("reply template: %w", err)
		}
		dcfg.ReplyTemplate = string(b)
	}
	if dcfg.Mode != daemon.ModeReportOnly {
		r, err := newRemediation(ctx, cfg, st, log.With("component", "remediate"))
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("remediation: %w", err)
		}
		p.remediation = r
		dcfg.Blocker = r
	}
	an := analyze.New(analyzeConfig(cfg), log.With("component", "analyze"))
	d, err := daemon.New(dcfg, st, mail.NewSender(smtpConfig(cfg.SMTP)), approval.NewSigner(key), an, p.metrics, log)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.daemon = d
	p.watcher = mail.NewBatchWatcher(imapConfig(cfg.IMAP), st, d.DeliverBatch, log.With("component", "imap"))
	return p, nil
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	return out
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "abuse-responder.invalid"
}
