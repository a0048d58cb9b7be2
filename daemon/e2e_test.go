package daemon

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/store"
)

const (
	noticeAuth   = "dmarc=pass header.from=support.aws.com"
	approverAuth = "dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
)

// approve waits for the first summary, answers it with "confirm" and a
// note, and returns the summary's Message-ID.
func (h *harness) approve() string {
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	id := messageID(h.t, h.sentTo("ops@example.com")[0].Raw)
	if err := h.imap.Deliver(approvalMail(testApprover, id, "Confirm.\r\nThe scanner was removed.\r\n\r\n-- \r\nAlice", approverAuth)); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) waitClosed() {
	h.waitFor("the reply to AWS", func() bool { return len(h.sentTo(awsAddr)) >= 1 })
	h.waitFor("the case to close", func() bool { return h.caseState(testCase) == abuse.StateClosed })
}

// checkOnce asserts exactly one summary and one reply, and the reply's
// threading.
func (h *harness) checkOnce() {
	h.t.Helper()
	if n := len(h.sentTo("ops@example.com")); n != 1 {
		h.t.Errorf("%d summaries sent, want 1", n)
	}
	replies := h.sentTo(awsAddr)
	if len(replies) != 1 {
		h.t.Fatalf("%d replies to AWS, want exactly 1", len(replies))
	}
	m, err := gomail.CreateReader(bytes.NewReader(replies[0].Raw))
	if err != nil {
		h.t.Fatal(err)
	}
	subj, _ := m.Header.Subject()
	irt, _ := m.Header.MsgIDList("In-Reply-To")
	if subj != "Re: Your AWS Abuse Report [13051177201-1] [AWS ID 111122223333]" ||
		len(irt) != 1 || irt[0] != "8f2c1a0e5b7d4c21a9e3f6b0c4d2e1a7@amazon.com" {
		h.t.Errorf("reply subject %q, In-Reply-To %v: not threaded on the notice", subj, irt)
	}
	p, err := m.NextPart()
	if err != nil {
		h.t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(p.Body)
	if !strings.Contains(body.String(), "The scanner was removed.") || strings.Contains(body.String(), "Alice") {
		h.t.Errorf("reply body lacks the admins' note or keeps the signature:\n%s", body.String())
	}
}

func TestNoticeToReply(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.approve()
	h.waitClosed()
	values := h.gather()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.checkOnce()
	for metric, want := range map[string]float64{
		"abuse_responder_notices_total": 1, "abuse_responder_messages_total": 2,
		"abuse_responder_replies_sent_total": 1, `abuse_responder_cases{state="closed"}`: 1,
		`abuse_responder_mail_sent_total{kind="reply"}`: 1, "abuse_responder_notice_to_summary_seconds_count": 1,
	} {
		if values[metric] != want {
			t.Errorf("metric %s = %v, want %v", metric, values[metric], want)
		}
	}
	if n, _ := h.imap.Count("INBOX"); n != 0 {
		t.Errorf("%d mails left in INBOX, want all moved to Processed", n)
	}
	if n, _ := h.imap.Count("Sent"); n != 2 {
		t.Errorf("%d mails in Sent, want the summary and the reply", n)
	}
}

// TestRestartAtEveryStep kills the daemon at each step of the loop and
// starts a new one on the same store: nothing is lost and nothing is sent
// twice.
func TestRestartAtEveryStep(t *testing.T) {
	for _, tc := range []struct {
		name     string
		point    string
		n        int
		approval bool // the crash comes after the approval is delivered
	}{
		{"after the mail is stored", "before-handle", 1, false},
		{"after the summary is queued", "after-handle", 1, false},
		{"after the summary is sent, before it is marked", "before-mark-sent", 1, false},
		{"after the confirm is stored", "after-handle", 2, true},
		{"after the reply is sent, before it is marked", "before-mark-sent", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r1 := h.start(crashAt(tc.point, tc.n))
			if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
				t.Fatal(err)
			}
			if tc.approval {
				h.approve()
			}
			select {
			case <-r1.crashed:
			case err := <-r1.done:
				t.Fatalf("daemon ended before the crash point: %v", err)
			}
			if err := r1.wait(t); !errors.Is(err, errCrash) {
				t.Fatalf("first run ended with %v, want the simulated crash", err)
			}
			r2 := h.start(nil)
			if !tc.approval {
				h.approve()
			}
			h.waitClosed()
			if err := r2.wait(t); err != nil {
				t.Fatalf("second run: %v", err)
			}
			h.checkOnce()
		})
	}
}

// TestForgedNotice: a notice that fails authentication, or comes from a
// lookalike sender, is summarised as needs-human and never answered, even
// when an approver answers its summary.
func TestForgedNotice(t *testing.T) {
	for name, raw := range map[string]func(t *testing.T) []byte{
		"DMARC fails": func(t *testing.T) []byte { return noticeMail(t, "dmarc=fail header.from=support.aws.com") },
		"lookalike sender": func(t *testing.T) []byte {
			return bytes.ReplaceAll(noticeMail(t, "dmarc=pass header.from=support-aws.com"),
				[]byte("trustandsafety@support.aws.com"), []byte("trustandsafety@support-aws.com"))
		},
		"unknown account": func(t *testing.T) []byte {
			return bytes.ReplaceAll(noticeMail(t, noticeAuth), []byte("111122223333"), []byte("999988887777"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r := h.start(nil)
			if err := h.imap.Deliver(raw(t)); err != nil {
				t.Fatal(err)
			}
			h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
			summary := h.sentTo("ops@example.com")[0].Raw
			if !bytes.Contains(summary, []byte("needs a human")) {
				t.Errorf("the summary does not say the case needs a human:\n%s", summary)
			}
			id := messageID(t, summary)
			h.imap.Deliver(approvalMail(testApprover, id, "confirm", approverAuth))
			h.waitFor("the approval to be handled", func() bool { n, _ := h.imap.Count("INBOX"); return n == 0 })
			if err := r.wait(t); err != nil {
				t.Fatal(err)
			}
			if got := h.caseState(testCase); got != abuse.StateNeedsHuman {
				t.Errorf("case state %s, want needs-human", got)
			}
			if n := len(h.sentTo(awsAddr)) + len(h.sentTo("trustandsafety@support-aws.com")); n != 0 {
				t.Errorf("%d replies went out for a forged notice", n)
			}
		})
	}
}

// TestSMTPOutage: the SMTP server refuses with 451 for a while, before
// the summary or before the reply; each goes out once it is back, once.
func TestSMTPOutage(t *testing.T) {
	for _, phase := range []string{"summary", "reply"} {
		t.Run(phase, func(t *testing.T) {
			h := newHarness(t)
			if phase == "summary" {
				h.smtp.FailWith(451)
			}
			r := h.start(nil)
			if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
				t.Fatal(err)
			}
			if phase == "reply" {
				h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
				h.smtp.FailWith(451)
			} else {
				h.waitFor("two failed attempts", func() bool { return h.attempts(testCase+":summary") >= 2 })
				h.smtp.FailWith(0)
			}
			h.approve()
			if phase == "reply" {
				h.waitFor("two failed attempts", func() bool { return h.attempts(testCase+":reply") >= 2 })
				h.smtp.FailWith(0)
			}
			h.waitClosed()
			if err := r.wait(t); err != nil {
				t.Fatal(err)
			}
			h.checkOnce()
		})
	}
}

// TestReminders: a notice that arrives 20 hours after AWS sent it is 4
// hours from its deadline: the 8-hour reminder goes out once, the 2-hour
// one not yet, and a restart sends no second reminder.
func TestReminders(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(testdataMail(t, "testdata/notice.eml", time.Now().Add(-20*time.Hour), noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("summary and reminder", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	r = h.start(nil)
	h.waitFor("a few ticks of the restarted daemon", func() bool { return h.outbox(testCase+":summary").Status == store.OutSent })
	time.Sleep(5 * h.cfg.Tick) // give a wrong second reminder the chance to appear
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	mails := h.sentTo("ops@example.com")
	if len(mails) != 2 {
		var ids []string
		for _, m := range mails {
			ids = append(ids, messageID(t, m.Raw))
		}
		t.Fatalf("%d mails to the admins, want the summary and one reminder: %v", len(mails), ids)
	}
	if !bytes.Contains(mails[1].Raw, []byte("Subject: Reminder: ")) {
		t.Errorf("second mail is not a reminder:\n%s", mails[1].Raw[:300])
	}
}

// TestFinalNotificationEscalates: a final notification with an AWS-applied
// block for an open case sends an urgent summary at once.
func TestFinalNotificationEscalates(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	if err := h.imap.Deliver(testdataMail(t, "testdata/final.eml", time.Now(), noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the urgent summary", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	urgent := h.sentTo("ops@example.com")[1].Raw
	if !bytes.Contains(urgent, []byte("Subject: URGENT: ")) || !bytes.Contains(urgent, []byte("Blocked OUTBOUND TCP")) {
		t.Errorf("the escalation is not an urgent summary naming AWS's block:\n%s", urgent)
	}
}

// TestReplyRefused: a 5xx for the reply hands the case to a human.
func TestReplyRefused(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	h.smtp.FailWith(550)
	h.approve()
	h.waitFor("needs-human", func() bool { return h.caseState(testCase) == abuse.StateNeedsHuman })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
}

// TestApprovalReplay: a second confirm, or one replayed, sends nothing more.
func TestApprovalReplay(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	id := h.approve()
	h.waitClosed()
	h.imap.Deliver(approvalMail("bob@example.com", id, "confirm", approverAuth))
	h.imap.Deliver(approvalMail(testApprover, id, "confirm\r\nagain", approverAuth))
	h.waitFor("the replays to be handled", func() bool { n, _ := h.imap.Count("INBOX"); return n == 0 })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	h.checkOnce()
}

func (h *harness) attempts(key string) int { return h.outbox(key).Attempts }

// outbox reads one queued mail from the store; zero when absent.
func (h *harness) outbox(key string) store.OutMail {
	st, err := store.Open(context.Background(), h.dbPath)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.Close()
	m, _ := st.OutMail(context.Background(), key)
	return m
}

// TestMachineMail: a notice that carries Auto-Submitted is still a notice
// (AWS's mail is automated), while a bounce of our own summary is kept
// and ignored, never read as a notice or an approval.
func TestMachineMail(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	auto := append([]byte("Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\n"), noticeMail(t, noticeAuth)...)
	if err := h.imap.Deliver(auto); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	summary := h.sentTo("ops@example.com")[0].Raw
	bounce := []byte("From: MAILER-DAEMON@example.com\r\nTo: " + testMailbox + "\r\nSubject: Undelivered Mail\r\n" +
		"Message-ID: <bounce-1@example.com>\r\nContent-Type: text/plain\r\n\r\nThe mail below could not be delivered.\r\n\r\n" +
		string(summary))
	if err := h.imap.Deliver(bounce); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the bounce to be handled", func() bool { n, _ := h.imap.Count("INBOX"); return n == 0 })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if got := h.caseState(testCase); got != abuse.StateAwaitingApproval {
		t.Errorf("case state %s, want awaiting-approval", got)
	}
	if n := len(h.sentTo("ops@example.com")); n != 1 {
		t.Errorf("%d summaries, want 1: the bounce made mail", n)
	}
}

// gather reads the latest run's metrics as "name{labels}" → value.
func (h *harness) gather() map[string]float64 {
	out := map[string]float64{}
	fams, err := h.metrics.Registry.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// TestAWSWritesAfterClose: AWS answering our reply reaches the admins as
// an urgent mail; it does not reopen the case or send anything to AWS.
func TestAWSWritesAfterClose(t *testing.T) {
	h := newHarness(t)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.approve()
	h.waitClosed()
	again := bytes.Replace(noticeMail(t, noticeAuth), []byte("Message-ID: <8f2c1a0e"), []byte("Message-ID: <aa2c1a0e"), 1)
	again = bytes.Replace(again, []byte("Subject: Your AWS"), []byte("Subject: RE: Your AWS"), 1)
	if err := h.imap.Deliver(again); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the mail to the admins", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if got := h.caseState(testCase); got != abuse.StateClosed {
		t.Errorf("case state %s, want closed", got)
	}
	if n := len(h.sentTo(awsAddr)); n != 1 {
		t.Errorf("%d mails to AWS, want the one reply", n)
	}
	if !bytes.Contains(h.sentTo("ops@example.com")[1].Raw, []byte("AWS wrote again")) {
		t.Error("the admins' mail does not say AWS wrote again")
	}
}
