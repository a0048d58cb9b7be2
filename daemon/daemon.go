// Package daemon moves cases through their life cycle: it stores every
// mail the watcher fetches, turns notices into cases, asks the admins, acts
// on their approval and sends the reply to AWS, each step recorded so that
// a restart at any point neither loses a case nor repeats a side effect.
//
// One goroutine (the case loop) owns every case transition. The outbox
// loop only sends mail that the case loop queued, and marks it sent.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

// Mode is where the human stands (DESIGN.md).
type Mode string

// The modes. Only ModeReportOnly is implemented in this package today:
// blocking comes with the remediation issue, and the others are refused
// at start rather than pretending to block.
const (
	ModeBlockThenConfirm Mode = "block-then-confirm"
	ModeConfirmThenBlock Mode = "confirm-then-block"
	ModeReportOnly       Mode = "report-only"
)

// Config is what the daemon needs; cmd maps config.Config onto it.
type Config struct {
	Mode Mode
	// Notices act only from these senders and accounts, and, when
	// RequireAuthenticatedNotice, with a passing Authentication-Results.
	Senders                    []string
	Accounts                   []string
	RequireAuthenticatedNotice bool
	AuthservID                 string

	Approval  approval.Policy
	From      *netmail.Address
	SummaryTo []*netmail.Address
	ReplyTo   *netmail.Address
	Hostname  string
	TokenTTL  time.Duration
	Reminders []time.Duration

	ReplyTemplate string // "" = built in
	Contact       string

	// SentMailbox, when set, receives a copy of each reply to AWS, and is
	// searched before a reply is sent again after a crash.
	SentMailbox string
	IMAP        mail.IMAPConfig

	// Tick is how often the loops look for work without being woken;
	// default 5s.
	Tick time.Duration
	// RetryBase and RetryMax bound the backoff between attempts to send a
	// mail or to apply a block; defaults 30s and 30m.
	RetryBase, RetryMax time.Duration

	// Blocker applies blocks; required unless Mode is report-only.
	Blocker Blocker
	// MaintainEvery is how often the blocks in place are checked against
	// reality and expired (default 10m).
	MaintainEvery time.Duration
}

// Analyzer is the analysis stage (*analyze.Analyzer). It is called once
// per new case, from the case loop, before the case's transaction: it may
// take seconds (AWS calls, log scans) and must not hold the store's writer.
// It does not fail: what it could not learn is in the Analysis's Problems.
// Nil means no analysis.
type Analyzer interface {
	Analyze(ctx context.Context, n abuse.Notice) analyze.Analysis
}

// Daemon runs the case loop and the outbox loop.
type Daemon struct {
	cfg      Config
	store    *store.Store
	sender   *mail.Sender
	sent     *mail.SentFolder // nil without SentMailbox
	signer   *approval.Signer
	analyzer Analyzer
	log      *slog.Logger
	metrics  *Metrics
	now      func() time.Time

	wakeCases  chan struct{}
	wakeOutbox chan struct{}

	// crash, when set by tests, is called at named points; returning
	// errCrash there stops the daemon as if killed.
	crash func(point string) error

	mu       sync.Mutex
	received map[int64]time.Time // message id → when fetched, for the latency metric

	lastDeadlineCheck time.Time             // owned by the case loop
	blockRetry        map[string]retryState // owned by the case loop
	lastMaintain      time.Time             // owned by the case loop
	deadlineWake      atomic.Bool           // the outbox sent a reply: look at approved cases now
}

// New checks the config and builds a daemon. The blocking modes need a
// Blocker: a daemon that claimed to block and did not would be worse than
// none.
func New(cfg Config, st *store.Store, sender *mail.Sender, signer *approval.Signer, an Analyzer, m *Metrics, log *slog.Logger) (*Daemon, error) {
	switch cfg.Mode {
	case ModeReportOnly:
	case ModeBlockThenConfirm, ModeConfirmThenBlock:
		if cfg.Blocker == nil {
			return nil, fmt.Errorf("remediate.mode %q needs a blocker", cfg.Mode)
		}
	default:
		return nil, fmt.Errorf("unknown remediate.mode %q", cfg.Mode)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.RetryMax < cfg.RetryBase {
		cfg.RetryMax = max(30*time.Minute, cfg.RetryBase)
	}
	if cfg.MaintainEvery <= 0 {
		cfg.MaintainEvery = 10 * time.Minute
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 48 * time.Hour
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "abuse-responder.invalid"
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	var sent *mail.SentFolder
	if cfg.SentMailbox != "" {
		sent = mail.NewSentFolder(cfg.IMAP, cfg.SentMailbox)
	}
	return &Daemon{
		cfg: cfg, store: st, sender: sender, sent: sent, signer: signer, analyzer: an, log: log, metrics: m,
		now:        time.Now,
		wakeCases:  make(chan struct{}, 1),
		wakeOutbox: make(chan struct{}, 1),
		received:   map[int64]time.Time{},
		blockRetry: map[string]retryState{},
	}, nil
}

// Deliver stores one fetched mail; the watcher moves it on the server only
// after this returns nil, so a mail is never lost between the two. A
// watcher built with mail.NewBatchWatcher and DeliverBatch stores a whole
// fetched batch with one commit instead (ingest.go).
func (d *Daemon) Deliver(ctx context.Context, in mail.Incoming) error {
	return d.DeliverBatch(ctx, []mail.Incoming{in})
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// errCrash stops the loops at a test's crash point.
var errCrash = errors.New("simulated crash")

func (d *Daemon) crashPoint(point string) error {
	if d.crash == nil {
		return nil
	}
	return d.crash(point)
}

// Run runs the loops until ctx ends or one fails for good.
func (d *Daemon) Run(ctx context.Context) error {
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- d.caseLoop(inner) }()
	go func() { errs <- d.outboxLoop(inner) }()
	err := <-errs
	cancel()
	<-errs
	if d.sent != nil {
		d.sent.Close()
	}
	if d.sender != nil {
		d.sender.Close() // QUIT on the kept SMTP connection; the Sender stays usable
	}
	if ctx.Err() != nil {
		// Stopped from outside: an error on the way out (a transaction
		// cut short by the cancel) is part of stopping, and the store
		// rolled it back.
		return nil
	}
	return err
}

// loop calls step at each tick or wake-up until ctx ends. A step error
// ends the loop only for a simulated crash or a closed store; other
// errors are logged and retried at the next tick.
func (d *Daemon) loop(ctx context.Context, name string, wakeCh chan struct{}, step func(context.Context) error) error {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		if err := step(ctx); err != nil {
			if errors.Is(err, errCrash) || ctx.Err() != nil {
				return err
			}
			d.log.Error("loop step failed; retrying at the next tick", "loop", name, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-wakeCh:
		}
	}
}
