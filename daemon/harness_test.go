package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/internal/embedded"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

const (
	testMX       = "mx.example.com"
	testMailbox  = "abuse@example.com"
	testApprover = "alice@example.com"
	awsAddr      = "trustandsafety@support.aws.com"
	testCase     = "13051177201-1"
)

// harness runs the daemon and the watcher against an in-memory IMAP
// server and a real SMTP listener, and restarts them on the same store
// file as a killed process would be.
// mailServer is the IMAP server at the other end: go-imap's in-memory
// server or a real Dovecot.
type mailServer interface {
	Address() string
	Deliver(raw []byte) error
	Count(mailbox string) (int, error)
}

type harness struct {
	t      *testing.T
	imap   mailServer
	smtp   *embedded.SMTP
	dbPath string
	key    []byte
	cfg    Config

	metrics  *Metrics // of the latest run
	analyzer Analyzer // nil: no analysis
	// newBlocker, when set, gives each run its Blocker on that run's store.
	newBlocker func(*store.Store) Blocker

	mu       sync.Mutex
	received []embedded.Mail // everything the SMTP listener took, in order
	arrived  chan struct{}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	im, err := embedded.StartIMAP(testMailbox, "pw", "Processed", "Sent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return newHarnessOn(t, im)
}

// newHarnessOn runs the harness against the IMAP server im, whose user
// is testMailbox with password "pw".
func newHarnessOn(t *testing.T, im mailServer) *harness {
	t.Helper()
	sm, err := embedded.StartSMTP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	from := &netmail.Address{Name: "Abuse desk", Address: testMailbox}
	imapCfg := mail.IMAPConfig{Address: im.Address(), TLS: "none", Username: testMailbox, Password: "pw", Auth: "login",
		Mailbox: "INBOX", ProcessedMailbox: "Processed", PollInterval: 100 * time.Millisecond, IDLE: true}
	h := &harness{t: t, imap: im, smtp: sm, dbPath: filepath.Join(t.TempDir(), "state.db"), key: key,
		arrived: make(chan struct{}, 64),
		cfg: Config{
			Mode: ModeReportOnly, Senders: []string{awsAddr, "ec2-abuse@amazon.com"}, Accounts: []string{"111122223333"},
			RequireAuthenticatedNotice: true, AuthservID: testMX,
			Approval: approval.Policy{Approvers: []string{testApprover}, AuthservID: testMX, RequireAuth: true,
				OwnAddresses: []string{testMailbox}},
			From: from, SummaryTo: []*netmail.Address{{Address: "ops@example.com"}}, ReplyTo: from,
			Hostname: "example.com", TokenTTL: time.Hour, Reminders: []time.Duration{8 * time.Hour, 2 * time.Hour},
			SentMailbox: "Sent", IMAP: imapCfg, Tick: 50 * time.Millisecond,
			RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		}}
	go func() {
		for m := range sm.Got {
			h.mu.Lock()
			h.received = append(h.received, m)
			h.mu.Unlock()
			h.arrived <- struct{}{}
		}
	}()
	return h
}

// run is one life of the daemon process: it ends when stop is called or
// when the crash hook fires.
type run struct {
	stop    func()
	done    chan error
	crashed chan struct{}
}

// start runs a daemon on the store file; crash, if set, is the test's
// crash hook.
func (h *harness) start(crash func(point string) error) *run {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	h.metrics = NewMetrics(st)
	if h.newBlocker != nil {
		h.cfg.Blocker = h.newBlocker(st)
	}
	d, err := New(h.cfg, st, mail.NewSender(mail.SMTPConfig{Address: h.smtp.Addr, TLS: "none", Timeout: 5 * time.Second}),
		approval.NewSigner(h.key), h.analyzer, h.metrics, log)
	if err != nil {
		h.t.Fatal(err)
	}
	r := &run{done: make(chan error, 1), crashed: make(chan struct{})}
	var once sync.Once
	if crash != nil {
		d.crash = func(p string) error {
			err := crash(p)
			if err != nil {
				once.Do(func() { close(r.crashed) })
			}
			return err
		}
	}
	w := mail.NewBatchWatcher(h.cfg.IMAP, st, d.DeliverBatch, log)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(ctx) }()
	go func() {
		err := d.Run(ctx)
		cancel() // a crashed daemon takes its watcher down, as a killed process would
		wg.Wait()
		st.Close()
		r.done <- err
	}()
	r.stop = func() { cancel() }
	return r
}

// wait stops r (if it has not crashed already) and returns Run's error.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.crashed:
		// Let the crash unwind by itself: a cancel now would look like a
		// clean stop.
	default:
		r.stop()
	}
	select {
	case err := <-r.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
		return nil
	}
}

// crashAt returns a crash hook that fires at the n-th time point is passed.
func crashAt(point string, n int) func(string) error {
	var mu sync.Mutex
	seen := 0
	return func(p string) error {
		mu.Lock()
		defer mu.Unlock()
		if p != point {
			return nil
		}
		seen++
		if seen == n {
			return errCrash
		}
		return nil
	}
}

// waitFor polls cond until it holds; the bound only fails the test, it
// measures nothing.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-h.arrived:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("waited 20s for %s", what)
		}
	}
}

// sentTo returns the mails the listener took for addr.
func (h *harness) sentTo(addr string) []embedded.Mail {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []embedded.Mail
	for _, m := range h.received {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

func (h *harness) caseState(id string) abuse.State {
	st, err := store.Open(context.Background(), h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	var s abuse.State
	st.View(context.Background(), func(tx *store.Tx) error {
		c, _, err := tx.Case(id)
		s = c.State
		return err
	})
	return s
}

// noticeMail is the sample notice, dated now, with our MX's verdict on top.
func noticeMail(t *testing.T, authResult string) []byte {
	return testdataMail(t, "testdata/notice.eml", time.Now(), authResult)
}

// testdataMail reads a notice from testdata, dated at, with our MX's
// verdict on top.
func testdataMail(t *testing.T, path string, at time.Time, authResult string) []byte {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(raw), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Date: ") {
			lines[i] = "Date: " + at.UTC().Format(time.RFC1123Z) + "\n"
		}
	}
	return []byte("Authentication-Results: " + testMX + "; " + authResult + "\n" + strings.Join(lines, ""))
}

// approvalMail is an approver's reply to the summary with Message-ID id.
func approvalMail(from, id, body, authResult string) []byte {
	return []byte(strings.Join([]string{
		"Authentication-Results: " + testMX + "; " + authResult,
		"From: <" + from + ">",
		"To: " + testMailbox,
		"Subject: Re: [abuse-responder] Case " + testCase,
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"Message-ID: <reply-" + strings.Trim(id, "<>") + "-" + from + ">",
		"In-Reply-To: " + id,
		"References: " + id,
		"Content-Type: text/plain; charset=utf-8",
		"",
		body,
	}, "\r\n"))
}

func messageID(t *testing.T, raw []byte) string {
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("Message-Id")
}
