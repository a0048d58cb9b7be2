package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abuse-responder/abuse-responder/daemon"
	"github.com/abuse-responder/abuse-responder/internal/embedded"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

// loop is the daemon and its watcher in this process, wired as
// cmd/abuse-responder/demo.go wires them (with the batch watcher), on
// Dovecot and an SMTP listener.
type loop struct {
	st      *store.Store
	metrics *daemon.Metrics
	cancel  context.CancelFunc
	done    chan struct{}
}

type loopConfig struct {
	imapAddr, smtpAddr string
	dbPath             string
	sentMailbox        string
	tick               time.Duration
	log                *slog.Logger
}

func imapConfig(addr string) mail.IMAPConfig {
	// IDLE on, and a 60s poll so that a wake-up within the bench comes from
	// IDLE's EXISTS, never from polling.
	return mail.IMAPConfig{Address: addr, TLS: "none", Username: benchUser, Password: benchPassword,
		Auth: "login", Mailbox: "INBOX", ProcessedMailbox: "Processed", PollInterval: 60 * time.Second, IDLE: true}
}

func startLoop(ctx context.Context, lc loopConfig) (*loop, error) {
	st, err := store.Open(ctx, lc.dbPath)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	imapCfg := imapConfig(lc.imapAddr)
	from := &netmail.Address{Name: "Abuse desk", Address: benchUser}
	m := daemon.NewMetrics(nil) // no case collector: it would scan every case at each read
	d, err := daemon.New(daemon.Config{
		Mode: daemon.ModeReportOnly, Senders: []string{"trustandsafety@support.aws.com", "ec2-abuse@amazon.com"},
		Accounts: []string{"111122223333"}, RequireAuthenticatedNotice: true, AuthservID: benchMX,
		Approval: approval.Policy{Approvers: []string{"alice@bench.example"}, AuthservID: benchMX, RequireAuth: true,
			OwnAddresses: []string{benchUser}},
		From: from, SummaryTo: []*netmail.Address{{Name: "Ops", Address: "ops@bench.example"}}, ReplyTo: from,
		Hostname: "bench.example", TokenTTL: time.Hour, Reminders: []time.Duration{8 * time.Hour, 2 * time.Hour},
		Contact: "Bench Ops, +1 555 0100", SentMailbox: lc.sentMailbox, IMAP: imapCfg, Tick: lc.tick,
	}, st, mail.NewSender(mail.SMTPConfig{Address: lc.smtpAddr, TLS: "none", Timeout: 10 * time.Second}),
		approval.NewSigner(key), nil, m, lc.log)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Batch intake: one commit per fetched batch (cmd/abuse-responder wires
	// the daemon the same way).
	w := mail.NewBatchWatcher(imapCfg, st, d.DeliverBatch, lc.log)
	runCtx, cancel := context.WithCancel(ctx)
	l := &loop{st: st, metrics: m, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Run(runCtx) }()
	go func() { defer wg.Done(); w.Run(runCtx) }()
	go func() { wg.Wait(); close(l.done) }()
	return l, nil
}

// stop ends the daemon and the watcher and closes the store.
func (l *loop) stop() error {
	l.cancel()
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the daemon did not stop within 30s")
	}
	return l.st.Close()
}

// waitSent waits (at most 30s) until the outbox has marked n mails sent,
// so that stopping the daemon does not cut off the last copy to Sent.
func (l *loop) waitSent(ctx context.Context, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for l.counter("abuse_responder_mail_sent_total") < float64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the outbox marked %.0f of %d mails sent within 30s", l.counter("abuse_responder_mail_sent_total"), n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// counter reads one of the daemon's counters (summed over labels).
func (l *loop) counter(name string) float64 {
	fams, err := l.metrics.Registry.Gather()
	if err != nil {
		return -1
	}
	var v float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if c := m.GetCounter(); c != nil {
				v += c.GetValue()
			}
		}
	}
	return v
}

// histMean is the mean of one of the daemon's histograms, in seconds.
func (l *loop) histMean(name string) (mean float64, n uint64) {
	fams, _ := l.metrics.Registry.Gather()
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil && h.GetSampleCount() > 0 {
				return h.GetSampleSum() / float64(h.GetSampleCount()), h.GetSampleCount()
			}
		}
	}
	return 0, 0
}

// caseStates counts the cases in the store by state.
func (l *loop) caseStates(ctx context.Context) (map[string]int, error) {
	counts := map[string]int{}
	err := l.st.View(ctx, func(tx *store.Tx) error {
		cases, err := tx.Cases(store.CaseFilter{})
		for _, c := range cases {
			counts[string(c.State)]++
		}
		return err
	})
	return counts, err
}

// collector drains an SMTP listener and notes when each case's first
// summary arrived.
type collector struct {
	srv  *embedded.SMTP
	quit chan struct{}
	gone chan struct{}

	mu        sync.Mutex
	first     map[string]time.Time
	target    int
	full      chan struct{} // closed when len(first) reaches target
	arrived   chan struct{} // a nudge per arrival
	total     atomic.Int64
	unmatched atomic.Int64
}

func startCollector(target int) (*collector, error) {
	srv, err := embedded.StartSMTP()
	if err != nil {
		return nil, err
	}
	c := &collector{srv: srv, quit: make(chan struct{}), gone: make(chan struct{}),
		first: map[string]time.Time{}, target: target, full: make(chan struct{}), arrived: make(chan struct{}, 1)}
	go c.run()
	return c, nil
}

func (c *collector) run() {
	defer close(c.gone)
	for {
		select {
		case <-c.quit:
			return
		case m := <-c.srv.Got:
			now := time.Now()
			c.total.Add(1)
			id := caseOfSummary(m.Raw)
			if id == "" {
				c.unmatched.Add(1)
				continue
			}
			c.mu.Lock()
			if _, ok := c.first[id]; !ok {
				c.first[id] = now
				if len(c.first) == c.target {
					close(c.full)
				}
			}
			c.mu.Unlock()
			select {
			case c.arrived <- struct{}{}:
			default:
			}
		}
	}
}

func (c *collector) close() {
	c.srv.Close()
	close(c.quit)
	<-c.gone
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.first)
}

// waitCase waits (at most timeout) for the summary of id.
func (c *collector) waitCase(ctx context.Context, id string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		t, ok := c.first[id]
		c.mu.Unlock()
		if ok {
			return t, nil
		}
		select {
		case <-c.arrived:
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("no summary for case %s within %s", id, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// lastArrival is the latest first-arrival time, for a run cut short.
func (c *collector) lastArrival() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last time.Time
	for _, t := range c.first {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// warnCounter is a slog handler that counts the daemon's warnings and
// errors (printing the first few) and, when verbose, prints everything.
type warnCounter struct {
	next    slog.Handler
	n       *atomic.Int64
	verbose bool
}

func newLogger(verbose bool) (*slog.Logger, *atomic.Int64) {
	n := new(atomic.Int64)
	h := &warnCounter{next: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}), n: n, verbose: verbose}
	return slog.New(h), n
}

func (h *warnCounter) Enabled(_ context.Context, l slog.Level) bool {
	return h.verbose || l >= slog.LevelWarn
}

func (h *warnCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		if h.n.Add(1) <= 5 || h.verbose {
			return h.next.Handle(ctx, r)
		}
		return nil
	}
	if h.verbose {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *warnCounter) WithAttrs(a []slog.Attr) slog.Handler {
	return &warnCounter{next: h.next.WithAttrs(a), n: h.n, verbose: h.verbose}
}

func (h *warnCounter) WithGroup(g string) slog.Handler {
	return &warnCounter{next: h.next.WithGroup(g), n: h.n, verbose: h.verbose}
}
